package ncsn.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** One in-process run of the {@code ncsn} command line: exit code and what it printed to stdout and stderr. */
public record CliRun(int code, String out, String err) {
    public static CliRun run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new CliRun(code, out.toString(), err.toString());
    }
}
