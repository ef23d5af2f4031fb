package ncsn.bench;

import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Placeholder that proves the JMH build works: {@code java -jar target/benchmarks.jar -l} lists it.
 *
 * <p>Template for real benchmarks: forked JVMs do NOT inherit the parent's module flags, so every
 * benchmark class that (transitively) touches the Vector API must carry the {@code @Fork} below.
 * Add {@code -Xms/-Xmx} (equal) and {@code -XX:+AlwaysPreTouch} for allocation-heavy benchmarks.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class SmokeBench {

    private float[] x;

    @Setup
    public void setup() {
        x = new float[1024];
        for (int i = 0; i < x.length; i++) {
            x[i] = i * 0.001f;
        }
    }

    @Benchmark
    public float sum() {
        float s = 0f;
        for (float v : x) {
            s += v;
        }
        return s;
    }
}
