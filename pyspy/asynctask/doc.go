// Package asynctask finds the asyncio tasks of a CPython process from
// outside it and decodes each one: its name, whether it runs, the chain of
// coroutines and generators it awaits down to the innermost suspended one
// (cr_await, gi_yieldfrom, an async generator's ag_await), their frames,
// and the tasks it awaits (one task awaiting another, gather, TaskGroup,
// wait, wait_for, shield).
//
// Tasks are found where each version keeps them: from 3.14 in the
// per-thread and per-interpreter lists of the C Task (their offsets from
// the _asyncio module's _Py_AsyncioModuleDebugOffsets when the caller has
// read them), in 3.12 and 3.13 in asyncio's _scheduled_tasks and
// _eager_tasks, and in 3.7–3.11 in its _all_tasks WeakSet; the pure-Python
// Task and subclasses of either count too. It reads through package pyobj
// and walks frames with package frames; like them it trusts nothing it
// reads: every list, chain and count is bounded and cycles end a walk with
// an error, never a hang.
package asynctask

//go:generate go run ../../internal/cmd/genasyncio -i layouts.txt -o layouts_gen.go
