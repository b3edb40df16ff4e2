"""Benchmark suites: a grid of ordinary recipes (method x dataset x protocol x seed) run from one file, resumable and
shardable, reported as one table (docs/SUITES.md). ``vidlab suite run`` / ``vidlab suite report``."""

from vidlab.suites.report import collect, format_table, suite_table, write_report
from vidlab.suites.runner import JobFailed, JobRunner, run_suite
from vidlab.suites.spec import Job, Suite, load_suite, parse_shard, shard_jobs

__all__ = [
    "Job",
    "JobFailed",
    "JobRunner",
    "Suite",
    "collect",
    "format_table",
    "load_suite",
    "parse_shard",
    "run_suite",
    "shard_jobs",
    "suite_table",
    "write_report",
]
