package ncsn.sample;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** -Dncsn.cuda.graph: on by default, off on request, anything else an error naming the property. */
class LangevinGraphPropertyTest {
    private final String saved = System.getProperty(LangevinGraph.PROPERTY);

    @AfterEach
    void restore() {
        if (saved == null) System.clearProperty(LangevinGraph.PROPERTY);
        else System.setProperty(LangevinGraph.PROPERTY, saved);
    }

    @Test
    void onByDefaultOffOnRequestAndRejectsOtherValues() {
        System.clearProperty(LangevinGraph.PROPERTY);
        assertTrue(LangevinGraph.enabledByProperty(), "unset");
        System.setProperty(LangevinGraph.PROPERTY, "OFF");
        assertFalse(LangevinGraph.enabledByProperty());
        System.setProperty(LangevinGraph.PROPERTY, "false");
        assertFalse(LangevinGraph.enabledByProperty());
        System.setProperty(LangevinGraph.PROPERTY, " on ");
        assertTrue(LangevinGraph.enabledByProperty());
        System.setProperty(LangevinGraph.PROPERTY, "sometimes");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, LangevinGraph::enabledByProperty);
        assertTrue(e.getMessage().contains("ncsn.cuda.graph"), e.getMessage());
    }
}
