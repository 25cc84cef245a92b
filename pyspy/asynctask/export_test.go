package asynctask

// TableDebugOffsets returns the members of minor's row in the generated
// table that a target's _Py_AsyncioModuleDebugOffsets gives too, named as
// DebugOffsets names them.
func TableDebugOffsets(minor int) map[string]int64 {
	for _, a := range layouts {
		if a.minor == minor {
			return map[string]int64{
				"TaskSize": a.taskSize, "TaskName": a.taskName, "TaskCoro": a.taskCoro, "TaskNode": a.taskNode,
				"InterpTasksHead":   a.interpTasksHead,
				"ThreadRunningLoop": a.tstateRunningLoop, "ThreadRunningTask": a.tstateRunningTask, "ThreadTasksHead": a.tstateTasksHead,
			}
		}
	}
	return nil
}
