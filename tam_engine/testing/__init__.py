"""Helpers for the tests and benchmarks (shipped so both can use them without importing each
other): the loop-by-loop TAM oracle, synthetic engine inputs and explanations, tiny random
models with their real processors, and a fake explainer for the evaluation."""
