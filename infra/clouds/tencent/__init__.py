"""Tencent Cloud (SCF): the component, its stack-config rules, the TCR registry, the dynamic resources and the provider's update semantics."""
