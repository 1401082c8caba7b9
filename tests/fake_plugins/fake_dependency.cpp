// Linked by the missing-dependency plugin, but kept where the loader cannot find it.
extern "C" __attribute__((visibility("default"))) int fake_dependency_answer() { return 42; }
