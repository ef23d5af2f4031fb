package ncsn.bench;

import java.util.concurrent.TimeUnit;
import ncsn.cpu.Parallel;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of one {@link Parallel#forRange} hand-off on all threads with an empty body: what
 * every parallel loop of the engine pays on top of its work (no FLOPs, no bytes). Before each
 * call the caller works alone for {@code pauseMicros} (a serial section), during which the
 * workers spin for {@code ncsn.spinMicros} (200 us by default) and then park; subtract the pause
 * to read the hand-off: with 0 and 100 it finds them spinning, with 1000 parked.
 *
 * <pre>
 * java -jar target/benchmarks.jar ParallelBench -f 1 -wi 3 -i 5
 * </pre>
 * Session 7 (2 cores, 2026-11-29): 0.44 us back to back, about 3 us after a 100 us pause, about
 * 48 us after 1000 us (the caller then runs both pieces itself; what it pays is unparking the
 * worker, a futex wake whose cross-core interrupt is slow in this VM). The ForkJoinPool
 * {@code invoke} that Parallel used before took 26 us back to back and 95 us after 200 us idle,
 * with the caller waiting for the wake-up.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class ParallelBench {

    @Param({"0", "100", "1000"})
    public int pauseMicros;

    private int pieces;

    @Setup
    public void setup() {
        pieces = Parallel.threads();
    }

    @Benchmark
    public void emptyForRange() {
        if (pauseMicros > 0) {
            long until = System.nanoTime() + pauseMicros * 1000L;
            while (System.nanoTime() < until) Thread.onSpinWait();
        }
        Parallel.forRange(pieces, 1, (lo, hi) -> {});
    }
}
