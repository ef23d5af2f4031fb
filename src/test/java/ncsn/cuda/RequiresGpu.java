package ncsn.cuda;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Marks a test class (or method) that needs a usable GPU and the kernel fatbin. Without them the
 * tests are skipped with the probe's reason, and one line saying so goes to stderr so that a CI log
 * shows which GPU tests did not run and why.
 */
@Target({ElementType.TYPE, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@ExtendWith(RequiresGpu.Condition.class)
public @interface RequiresGpu {
    final class Condition implements ExecutionCondition {
        @Override
        public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
            String why = !CudaProbe.available() ? "no usable GPU: " + CudaProbe.reason()
                    : !CudaProbe.fatbinPresent() ? "kernel fatbin not built (no nvcc at build time)" : null;
            if (why == null) return ConditionEvaluationResult.enabled("GPU available: " + CudaProbe.reason());
            if (context.getTestMethod().isEmpty())
                System.err.println("[ncsn] " + context.getDisplayName() + " skipped: " + why);
            return ConditionEvaluationResult.disabled(why);
        }
    }
}
