"""AWS GPU functions on Lambda Managed Instances: the reserved floor is the version's
``MinExecutionEnvironments`` (``PutFunctionScalingConfig``), not provisioned concurrency.

An execution environment serves up to ``PerExecutionEnvironmentMaxConcurrency`` requests at once, so
the policy's "reserved instances" are execution environments. Scaling configs exist per published
version only: the Qualifier is ``$LATEST.PUBLISHED`` or a version number (botocore's
``PublishedFunctionQualifier`` pattern; "This configuration applies to both $LATEST.PUBLISHED and numeric
function versions", AWS SAM), so the scaling qualifier is the alias's primary version, not the alias.
``GetFunctionScalingConfig`` answers ``RequestedFunctionScalingConfig`` only while a change settles and
``AppliedFunctionScalingConfig`` once it has ("The API reports the scaling configuration under
RequestedFunctionScalingConfig while a change is still settling and moves it to
AppliedFunctionScalingConfig once it takes effect, clearing the other", terraform-provider-aws,
function_scaling_config.go), so the wanted config is the requested one when present, else the applied
one; ``ready`` is the applied minimum ("the actual scaling settings in effect").
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.cloud.aws.control import LambdaControl, _call
from functions.cloud.types import AliasRouting, Capacity, CloudError


@dataclass(frozen=True)
class ExecutionEnvironments:
    """A version's scaling config: the wanted minimum (requested while settling, else applied), the
    applied minimum, and the wanted maximum (None when the version has none)."""

    requested_min: int
    applied_min: int
    requested_max: int | None


@dataclass(frozen=True)
class ReleasedVersions:
    """What :meth:`ManagedInstancesControl.release_unrouted` did: versions whose floor went to 0, and
    versions deleted."""

    released: tuple[str, ...]
    deleted: tuple[str, ...]


@dataclass
class ManagedInstancesControl(LambdaControl):
    """The AWS actuator for a GPU function on Lambda Managed Instances (versions, alias and invoke as
    :class:`LambdaControl`; capacity through the function scaling config)."""

    def scaling_qualifier(self, routing: AliasRouting) -> str:
        return routing.primary

    def execution_environments(self, version: str) -> ExecutionEnvironments:
        """The version's scaling config (all zero when it has none)."""
        try:
            answer = _call(
                self.retry, "GetFunctionScalingConfig", self._lambda.get_function_scaling_config,
                FunctionName=self.function, Qualifier=version,
            )  # fmt: skip
        except CloudError as error:
            if error.code == "ResourceNotFoundException":
                return ExecutionEnvironments(0, 0, None)
            raise
        applied = answer.get("AppliedFunctionScalingConfig") or {}
        wanted = answer.get("RequestedFunctionScalingConfig") or applied  # cleared once settled
        return ExecutionEnvironments(
            requested_min=int(wanted.get("MinExecutionEnvironments") or 0),
            applied_min=int(applied.get("MinExecutionEnvironments") or 0),
            requested_max=wanted.get("MaxExecutionEnvironments"),
        )

    def capacity(self, version: str) -> Capacity:
        environments = self.execution_environments(version)
        return Capacity(requested=environments.requested_min, ready=environments.applied_min)

    def set_capacity(self, version: str, instances: int) -> None:
        """Move ``MinExecutionEnvironments`` to ``instances``. The maximum is the stack's: it is sent back
        unchanged (clamping the floor to it), or for a version without a config yet (one ``llmfn
        promote`` published) copied from the alias's primary version."""
        current = self.execution_environments(version)
        maximum = current.requested_max
        if maximum is None:
            primary = self.alias().primary
            maximum = self.execution_environments(primary).requested_max if primary != version else None
        floor = instances if maximum is None else min(instances, int(maximum))
        if current.requested_min == floor and current.requested_max is not None:
            return
        _call(
            self.retry, "PutFunctionScalingConfig", self._lambda.put_function_scaling_config,
            FunctionName=self.function, Qualifier=version,
            FunctionScalingConfig={"MinExecutionEnvironments": floor,
                                   "MaxExecutionEnvironments": int(maximum if maximum is not None else floor)},
        )  # fmt: skip

    def delete_version(self, version: str) -> None:
        """``DeleteFunction`` with ``Qualifier``: the version and its scaling config go ("To delete a
        specific function version, use the Qualifier parameter", Lambda API reference). Lambda refuses
        a version an alias references ("You can't delete a version that an alias references")."""
        _call(
            self.retry, "DeleteFunction", self._lambda.delete_function,
            FunctionName=self.function, Qualifier=version,
        )  # fmt: skip

    def release_unrouted(self, rollback_target: str) -> ReleasedVersions:
        """After a promotion or a rollback: ``MinExecutionEnvironments`` 0 on every version the alias
        does not route to, and delete the versions older than ``rollback_target`` (never one the
        alias routes to). A floor on a version nobody calls bills GPU instances for good, and a
        capacity provider holds at most 100 function versions ("Function versions per capacity
        provider: 100 ... Cannot be increased", Lambda Managed Instances quotas)."""
        routing = self.alias()
        routed = {routing.primary, *routing.weights}
        released, deleted = [], []
        for version in sorted(self.versions(), key=int):
            if version in routed:
                continue
            if int(version) < int(rollback_target):
                try:
                    self.delete_version(version)
                except CloudError as error:
                    if error.code != "ResourceConflictException":  # another alias references it
                        raise
                else:
                    deleted.append(version)
                    continue
            if self.execution_environments(version).requested_min > 0:
                self.set_capacity(version, 0)
                released.append(version)
        return ReleasedVersions(released=tuple(released), deleted=tuple(deleted))
