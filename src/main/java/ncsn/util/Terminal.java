package ncsn.util;

import java.io.Console;
import java.lang.reflect.Method;

/** Whether standard output is an interactive terminal (progress bars) or a file/pipe (plain lines). */
public final class Terminal {
    private Terminal() {}

    /** System.console() is non-null only for a terminal up to JDK 21; JDK 22+ needs isTerminal(). */
    public static boolean stdoutIsTerminal() {
        Console c = System.console();
        if (c == null) return false;
        try {
            Method m = Console.class.getMethod("isTerminal");
            return (Boolean) m.invoke(c);
        } catch (NoSuchMethodException e) {
            return true;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return false;
        }
    }
}
