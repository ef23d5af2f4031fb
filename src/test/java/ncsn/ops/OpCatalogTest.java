package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Runs both checks of {@link OpCatalog} on every case: the float64 gradient check and the
 * float32-vs-reference comparison. {@code -Dncsn.ops=conv2d,cin_pp} restricts the run to some ops
 * while developing one.
 */
class OpCatalogTest {
    /** Every op the engine promises (issue: engine foundation). Removing one from the catalog fails here. */
    static final Set<String> REQUIRED = Set.of(
            "conv2d", "add", "scale", "mul", "elu", "cin_pp", "avgpool5", "meanpool2",
            "resize_bilinear", "sum", "mean", "linear", "softplus", "dsm_perturb", "dsm_loss");

    private static List<OpCatalog.Case> cases() {
        String only = System.getProperty("ncsn.ops");
        if (only == null || only.isBlank()) return OpCatalog.all();
        return OpCatalog.ofOps(List.of(only.split(",")));
    }

    @Test
    void catalogCoversEveryRequiredOp() {
        Set<String> present = new TreeSet<>();
        for (OpCatalog.Case c : OpCatalog.all()) present.add(c.op());
        Set<String> missing = new TreeSet<>(REQUIRED);
        missing.removeAll(present);
        assertEquals(Set.of(), missing, "ops missing from OpCatalog (present: " + present + ")");
    }

    @TestFactory
    Stream<DynamicTest> gradientCheckOfEveryReference() {
        return cases().stream().map(c -> dynamicTest("gradcheck " + c.label(), () -> {
            OpCatalog.Outcome o = OpCatalog.gradCheck(c, 11);
            assertTrue(o.passed(), o.detail());
        }));
    }

    @TestFactory
    Stream<DynamicTest> float32KernelAgainstReference() {
        return cases().stream().map(c -> dynamicTest("f32 vs f64 " + c.label(), () -> {
            OpCatalog.Outcome o = OpCatalog.compareFast(c, 12);
            assertTrue(o.passed(), "error " + o.error() + " > " + o.limit() + ": " + o.detail());
        }));
    }
}
