"""Worker-side half of trio_wf.

This package is what runs inside a worker process. It is a separate top-level
package so that a worker starts without importing trio (or trio_wf, which imports
trio): start-up time is dispatch latency, and user code in a worker should see a
plain Python process. Only the standard library is imported here; cloudpickle and
tblib are imported lazily, when a payload or an error needs them.
"""
