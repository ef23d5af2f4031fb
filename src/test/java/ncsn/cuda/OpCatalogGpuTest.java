package ncsn.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.Stream;
import ncsn.ops.OpCatalog;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every op case of {@link OpCatalog} on the GPU (forward and every input gradient) against the
 * float64 reference, with {@link OpCatalog#gpuTolerance}. Skipped, with the probe's reason, on
 * machines without a usable GPU. {@code ncsn selftest --gpu} runs the same comparisons from the jar.
 */
@RequiresGpu
class OpCatalogGpuTest {

    static Stream<OpCatalog.Case> cases() {
        return OpCatalog.all().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gpuMatchesReference(OpCatalog.Case c) {
        OpCatalog.Outcome o = OpCatalog.compareGpu(c, 11);
        assertTrue(o.passed(), c.label() + ": error " + o.error() + " > " + o.limit() + " (" + o.detail() + ")");
    }
}
