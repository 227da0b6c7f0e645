"""Promotion runs against the cloud stand-ins: the cloud suite's fixtures (moto's server reset per
test, the AWS proxy, the SCF emulator, ``stand_in`` once per cloud, fake AWS credentials)."""

from tests.cloud.conftest import _aws_test_credentials, aws_proxy, moto_reset, scf, stand_in

__all__ = ["_aws_test_credentials", "aws_proxy", "moto_reset", "scf", "stand_in"]
