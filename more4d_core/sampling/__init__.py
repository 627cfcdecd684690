"""Sampling: flow-matching Euler with classifier-free guidance, and conditioning helpers."""

from .flow_sampler import GenerationCancelled, guided_velocity, sample_flow, seeded_noise

__all__ = ["GenerationCancelled", "guided_velocity", "sample_flow", "seeded_noise"]
