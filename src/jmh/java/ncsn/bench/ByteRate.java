package ncsn.bench;

/**
 * Time spent inside a memory-bound kernel's calls and the bytes each call moves, printed as GB/s
 * at the end of a JMH iteration (to read against the machine's memory bandwidth). Benchmarks call
 * {@link #reset} in an iteration setup, {@link #add} after each timed call and {@link #report}
 * in the iteration teardown.
 */
final class ByteRate {
    private long nanos, calls;

    void reset() {
        nanos = 0;
        calls = 0;
    }

    /** One call that took {@code elapsedNanos}. */
    void add(long elapsedNanos) {
        nanos += elapsedNanos;
        calls++;
    }

    /** "  [what] 1.234 ms/call, 5.6 MB/call -> 7.89 GB/s", or nothing when no call was timed. */
    void report(String what, double bytesPerCall) {
        if (calls == 0) return;
        double sec = nanos / 1e9 / calls;
        System.out.printf("  [%s] %.3f ms/call, %.1f MB/call -> %.2f GB/s%n", what, sec * 1e3, bytesPerCall / 1e6,
                bytesPerCall / sec / 1e9);
    }
}
