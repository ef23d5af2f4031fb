package ncsn.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import ncsn.cpu.Simd;
import ncsn.ops.OpCatalog;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn check}: every op of the catalog through both checks (float64 gradient check;
 * float32 kernel against the float64 reference), one table row per case. Exit 1 on any failure.
 */
@Command(name = "check", mixinStandardHelpOptions = true,
        description = {"Verify every op: float64 reference backward against finite differences,",
                "and the fast float32 kernel (forward and gradients) against the float64 reference."})
public final class CheckCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--op", paramLabel = "NAME", description = "Only cases of these ops (e.g. conv2d, cin_pp); repeatable.")
    List<String> ops = new ArrayList<>();

    @Option(names = "--seed", description = "Seed for the random inputs (default: ${DEFAULT-VALUE}).")
    long seed = 11;

    @Option(names = {"-v", "--verbose"}, description = "Print the worst element of every case, not only of failures.")
    boolean verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Simd.gemmKernel(); // the provider logs its choice once, before the table
        List<OpCatalog.Case> cases = ops.isEmpty() ? OpCatalog.all() : OpCatalog.ofOps(ops);
        if (cases.isEmpty()) {
            spec.commandLine().getErr().println("check: no op named " + ops + " in the catalog");
            return CommandLine.ExitCode.USAGE;
        }
        out.printf(Locale.ROOT, "%-16s %-52s %10s %14s  %s%n", "op", "case", "gradcheck", "f32 vs f64", "result");
        int failed = 0;
        long t0 = System.nanoTime();
        for (OpCatalog.Case c : cases) {
            OpCatalog.Outcome g = OpCatalog.gradCheck(c, seed);
            OpCatalog.Outcome f = OpCatalog.compareFast(c, seed + 1);
            boolean ok = g.passed() && f.passed();
            if (!ok) failed++;
            // gradcheck column: worst error as a fraction of its allowance; f32 column: max|diff|/max|ref|.
            out.printf(Locale.ROOT, "%-16s %-52s %10s %14s  %s%n", c.op(), c.variant(),
                    String.format(Locale.ROOT, "%.2e", g.error()),
                    String.format(Locale.ROOT, "%.1e/%.0e", f.error(), f.limit()), ok ? "pass" : "FAIL");
            if (!g.passed() || verbose) out.println("    " + g.detail());
            if (!f.passed() || verbose) out.println("    " + f.detail());
            out.flush();
        }
        out.printf(Locale.ROOT, "%d cases, %d passed, %d failed (%.1f s). gradcheck: worst |analytic-numeric| as a"
                        + " fraction of its allowance (pass <= 1); f32 vs f64: max|fast-ref| / max|ref| against the limit.%n",
                cases.size(), cases.size() - failed, failed, (System.nanoTime() - t0) / 1e9);
        return failed == 0 ? CommandLine.ExitCode.OK : 1;
    }
}
