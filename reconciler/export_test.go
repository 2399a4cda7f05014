package reconciler

// SetStageHook sets the test seam called as each stage starts (Reconciler.stageHook), so
// a test can make a stage panic. Set it before Run or Reconcile.
func SetStageHook(r *Reconciler, hook func(stage, env string)) { r.stageHook = hook }
