"""The scheduler of `lifeboat daemon`: when jobs fire (timing), which may run together
(overlap), what they run (jobs), what is remembered (state), the loop (runner) and the
process around it (service)."""
