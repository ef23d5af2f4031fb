package ncsn.cli;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

import ncsn.cuda.CudaProbe;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * Entry point of {@code ncsn-engine.jar} and {@code bin/ncsn}.
 *
 * <p>Subcommands are separate classes annotated with {@code @Command(name = "...")} and listed in
 * {@code subcommands} below. Each implements {@code Callable<Integer>} (exit code) and may use
 * {@code mixinStandardHelpOptions = true} for its own {@code --help}.
 */
@Command(
        name = "ncsn",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "NCSN (score-based generative model) engine.",
        synopsisSubcommandLabel = "COMMAND",
        subcommands = {
            Main.InfoCommand.class,
            // ---- SUBCOMMANDS: add one line per command class, e.g. ----------------------------
            CheckCommand.class,
            ToyCommand.class,
            ScoreCommand.class,
            TrainCommand.class,
            SampleCommand.class,
            InpaintCommand.class,
            BenchCommand.class,
            // ------------------------------------------------------------------------------------
            CommandLine.HelpCommand.class,
        })
public final class Main implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI without exiting the JVM (for tests). */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    /** The configured picocli command line, e.g. for tests or to register extra subcommands. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        return cl;
    }

    /** {@code ncsn} without a subcommand: print usage to stderr, exit 2. */
    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        err.println("Missing command.");
        spec.commandLine().usage(err);
        return CommandLine.ExitCode.USAGE;
    }

    /** {@code --version}: the jar manifest's Implementation-Version ("dev" when run from classes). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {
                "ncsn-engine " + version(),
                "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")",
            };
        }
    }

    static String version() {
        String v = Main.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    /** {@code ncsn info}: what this JVM and machine offer the engine. Always exits 0. */
    @Command(name = "info", mixinStandardHelpOptions = true,
            description = "Print Java, CPU, heap, Vector API and GPU status.")
    static final class InfoCommand implements Callable<Integer> {

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            Runtime rt = Runtime.getRuntime();
            out.printf("ncsn-engine %s%n", version());
            out.printf("Java:        %s (%s, %s) at %s%n", System.getProperty("java.version"),
                    System.getProperty("java.vendor"), System.getProperty("java.vm.name"),
                    System.getProperty("java.home"));
            out.printf("Processors:  %d available%n", rt.availableProcessors());
            out.printf("Max heap:    %s%s%n", gib(rt.maxMemory()), heapFlags());
            out.printf("Vector API:  %s%n", vectorApi());
            out.printf("GPU:         %s%n", CudaProbe.available()
                    ? CudaProbe.reason()
                    : "none (" + CudaProbe.reason() + ")");
            out.printf("GPU kernels: %s%n", CudaProbe.fatbinPresent()
                    ? "fatbin present (" + CudaProbe.FATBIN_RESOURCE + ", " + CudaProbe.fatbin().length + " bytes)"
                    : "no fatbin in this build (built without nvcc)");
            out.flush();
            return CommandLine.ExitCode.OK;
        }

        private static String gib(long bytes) {
            return String.format(Locale.ROOT, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
        }

        private static String heapFlags() {
            try {
                List<String> args = ManagementFactory.getRuntimeMXBean().getInputArguments();
                StringBuilder sb = new StringBuilder();
                for (String a : args) {
                    if (a.startsWith("-Xmx") || a.startsWith("-Xms") || a.startsWith("-XX:MaxRAMPercentage")
                            || a.equals("-XX:+AlwaysPreTouch")) {
                        sb.append(sb.length() == 0 ? " (" : " ").append(a);
                    }
                }
                return sb.length() == 0 ? " (JVM default; bin/ncsn sets -Xmx, NCSN_HEAP overrides)" : sb.append(')').toString();
            } catch (RuntimeException | LinkageError e) {
                return "";
            }
        }

        private static String vectorApi() {
            if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
                return "absent (start java with --add-modules jdk.incubator.vector; bin/ncsn does)";
            }
            try {
                return "jdk.incubator.vector present, preferred float species "
                        + VectorInfo.preferredFloatLanes() + " lanes";
            } catch (LinkageError | RuntimeException e) {
                return "jdk.incubator.vector present but unusable (" + e + ")";
            }
        }
    }

    /** Loaded only after the module check: touching FloatVector without the module throws. */
    private static final class VectorInfo {
        static int preferredFloatLanes() {
            return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        }
    }
}
