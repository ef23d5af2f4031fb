package ncsn.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

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
            InfoCommand.class,
            SelftestCommand.class,
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
}
