package ncsn.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainConfigTest {
    @TempDir
    Path dir;

    /** The reference's configs/anneal.yml layout and values (MNIST branch), written out here. */
    static final String REFERENCE_LAYOUT = String.join("\n",
            "training:",
            "  batch_size: 128",
            "  n_epochs: 500000",
            "  n_iters: 200001",
            "  ngpu: 1",
            "  snapshot_freq: 5000",
            "  algo: 'dsm'",
            "  anneal_power: 2.0",
            "",
            "data:",
            "  ## mnist",
            "  dataset: \"MNIST\"",
            "  image_size: 28",
            "  channels: 1",
            "  logit_transform: false",
            "  random_flip: false",
            "",
            "model:",
            "  sigma_begin: 1",
            "  sigma_end: 0.01",
            "  num_classes: 10",
            "  batch_norm: false",
            "  ngf: 64",
            "",
            "optim:",
            "  weight_decay: 0.000",
            "  optimizer: \"Adam\"",
            "  lr: 0.001",
            "  beta1: 0.9",
            "  amsgrad: false",
            "");

    private Path write(String name, String text) throws Exception {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }

    private String error(String yaml, String... overrides) throws Exception {
        Path f = write("bad.yml", yaml);
        ConfigException e = assertThrows(ConfigException.class, () -> TrainConfig.load(f.toString(), List.of(overrides)));
        assertTrue(e.getMessage().startsWith("Config " + f), "names the file: " + e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one paragraph: " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void readsTheReferenceLayoutWithItsValues() throws Exception {
        TrainConfig c = TrainConfig.load(write("anneal.yml", REFERENCE_LAYOUT).toString(), List.of());
        assertEquals("anneal", c.name());
        assertEquals(128, c.training().batchSize());
        assertEquals(200001, c.training().nIters());
        assertEquals(5000, c.training().snapshotFreq());
        assertEquals("dsm", c.training().algo());
        assertEquals(2.0, c.training().annealPower());
        assertEquals("MNIST", c.data().dataset());
        assertEquals(28, c.data().imageSize());
        assertEquals(1, c.data().channels());
        assertEquals(1.0, c.model().sigmaBegin());
        assertEquals(0.01, c.model().sigmaEnd());
        assertEquals(64, c.model().ngf());
        assertEquals(0.001, c.optim().lr());
        // Our own keys take their defaults.
        assertEquals(100, c.training().testFreq());
        assertEquals(128, c.training().testBatchSize(), "test batch defaults to the batch size");
        assertEquals(3, c.training().keepSnapshots());
        assertEquals("auto", c.training().device());
        assertFalse(c.training().ema());
        assertEquals(0.999, c.training().emaRate());
        assertEquals("/usr/share/datasets/mnist", c.data().path());
        // Ignored keys are kept (they round-trip) but do not drive anything.
        assertEquals(500000, c.get("training.n_epochs"));
        assertEquals(10, c.sigmas().length);
        assertEquals(1.0, c.sigmas()[0]);
        assertEquals((float) 0.01, (float) c.sigmas()[9]);
        assertEquals(new ncsn.model.ModelConfig(1, 64, 10, false), c.modelConfig());
    }

    @Test
    void effectiveYamlReloadsToTheSameConfig() throws Exception {
        TrainConfig c = TrainConfig.load(write("anneal.yml", REFERENCE_LAYOUT).toString(),
                List.of("optim.lr=2e-4", "training.seed=-7", "data.path=/tmp/x y", "training.ema=true"));
        TrainConfig back = TrainConfig.parse(c.toYaml(), "stored", "anneal", List.of());
        assertEquals(List.of(), c.differences(back), c.toYaml());
        assertEquals(2e-4, back.optim().lr());
        assertEquals(-7L, back.training().seed());
        assertEquals("/tmp/x y", back.data().path());
    }

    @Test
    void everyBundledConfigLoads() throws Exception {
        for (String name : TrainConfig.BUNDLED) {
            TrainConfig c = TrainConfig.load(name, List.of());
            assertEquals(name, c.name());
            assertTrue(c.source().contains("bundled"), c.source());
        }
        TrainConfig small = TrainConfig.load(TrainConfig.DEFAULT_NAME, List.of());
        assertEquals("FashionMNIST", small.data().dataset());
        assertEquals("/usr/share/datasets/fashion-mnist", small.data().path());
        TrainConfig cifar = TrainConfig.load("cifar10", List.of());
        assertEquals(128, cifar.model().ngf());
        assertEquals(128, cifar.training().batchSize());
        assertEquals(200000, cifar.training().nIters());
        assertTrue(cifar.data().randomFlip());
        assertEquals(64, TrainConfig.load("mnist", List.of()).model().ngf());
    }

    @Test
    void unknownKeyIsNamedWithItsLineAndTheValidKeys() throws Exception {
        String m = error("training:\n  batch_size: 8\n  batchsize: 8\ndata:\n  dataset: MNIST\n");
        assertTrue(m.contains("unknown key 'training.batchsize' (line 3)"), m);
        assertTrue(m.contains("valid keys in 'training': batch_size, n_epochs, n_iters"), m);
        String s = error("trainig:\n  batch_size: 8\ndata:\n  dataset: MNIST\n");
        assertTrue(s.contains("unknown section 'trainig' (line 1)") && s.contains("training, data, model, optim"), s);
    }

    @Test
    void wrongTypesAreReported() throws Exception {
        String m = error("training:\n  batch_size: many\n  ema: 1\ndata:\n  dataset: MNIST\noptim:\n  lr: [1, 2]\n");
        assertTrue(m.contains("key 'training.batch_size' (line 2) must be an integer, got string 'many'"), m);
        assertTrue(m.contains("key 'training.ema' (line 3) must be true or false, got integer '1'"), m);
        assertTrue(m.contains("key 'optim.lr' (line 7) must be a number, got a list"), m);
        assertTrue(error("training:\n  n_iters: 1.5\ndata:\n  dataset: MNIST\n")
                .contains("'training.n_iters' (line 2) must be an integer, got number '1.5'"));
    }

    @Test
    void outOfRangeValuesAreReportedAllAtOnce() throws Exception {
        String m = error("training:\n  batch_size: 0\n  snapshot_freq: -5\ndata:\n  dataset: MNIST\n  image_size: 27\n"
                + "  channels: 3\nmodel:\n  batch_norm: true\n  sigma_begin: 0.01\n  sigma_end: 1\n");
        assertTrue(m.contains("'training.batch_size' (line 2) must be a positive integer, got 0"), m);
        assertTrue(m.contains("'training.snapshot_freq' (line 3) must be a positive integer, got -5"), m);
        assertTrue(m.contains("'data.image_size' (line 6) must be even"), m);
        assertTrue(m.contains("'data.channels' (line 7) is 3 but MNIST images have 1 channel"), m);
        assertTrue(m.contains("'model.batch_norm' (line 9) must be false"), m);
        assertTrue(m.contains("must decrease"), m);
    }

    @Test
    void unsupportedChoicesSayWhy() throws Exception {
        assertTrue(error("training:\n  algo: ssm\ndata:\n  dataset: MNIST\n").contains("'ssm' (sliced score matching) is not supported"));
        assertTrue(error("optim:\n  optimizer: SGD\ndata:\n  dataset: MNIST\n").contains("must be 'Adam'"));
        assertTrue(error("training:\n  device: tpu\ndata:\n  dataset: MNIST\n").contains("must be one of cpu, cuda, auto, got 'tpu'"));
        assertTrue(error("data:\n  dataset: SVHN\n").contains("'data.dataset' (line 2) must be one of MNIST, FashionMNIST"));
        assertTrue(error("training:\n  batch_size: 8\n").contains("key 'data.dataset' is missing"));
        assertTrue(error("data:\n  dataset: FOLDER\n").contains("'data.path' is missing"));
        assertTrue(error("training: [1\n").contains("is not valid YAML"));
        assertTrue(error("training:\n  batch_size: 1\n  batch_size: 2\ndata:\n  dataset: MNIST\n")
                .contains("key 'training.batch_size' is given twice (lines 2 and 3)"), "duplicate keys are refused");
    }

    @Test
    void overridesAreTypedByTheSchema() throws Exception {
        Path f = write("a.yml", REFERENCE_LAYOUT);
        TrainConfig c = TrainConfig.load(f.toString(), List.of("training.n_iters=500", "optim.lr=1e-4",
                "data.random_flip=true", "data.dataset=FashionMNIST", "training.seed=0x10"));
        assertEquals(500, c.training().nIters());
        assertEquals(1e-4, c.optim().lr());
        assertTrue(c.data().randomFlip());
        assertEquals("FashionMNIST", c.data().dataset());
        assertEquals("/usr/share/datasets/fashion-mnist", c.data().path(), "the default path follows the dataset");
        assertEquals(16L, c.training().seed());
        String m = error(REFERENCE_LAYOUT, "training.n_iters=lots", "training.itres=5", "optim.lr", "data.random_flip=yes",
                "training.batch_size=-1");
        assertTrue(m.contains("override '--set training.n_iters=lots' must be an integer, got 'lots'"), m);
        assertTrue(m.contains("names unknown key 'training.itres' (valid keys in 'training': batch_size"), m);
        assertTrue(m.contains("override '--set optim.lr' is not of the form section.key=value"), m);
        assertTrue(m.contains("'--set data.random_flip=yes' must be true or false"), m);
        assertTrue(m.contains("key 'training.batch_size' must be a positive integer, got -1"), m);
    }

    @Test
    void missingFileOrNameListsTheBundledConfigs() {
        ConfigException e = assertThrows(ConfigException.class, () -> TrainConfig.load("no_such_config", List.of()));
        assertTrue(e.getMessage().contains("no such file, and not the name of a bundled config (bundled: fashion_mnist_small"),
                e.getMessage());
    }

    @Test
    void resumableKeysAreTheBookkeepingOnes() {
        assertTrue(TrainConfig.resumable("training.n_iters"));
        assertTrue(TrainConfig.resumable("data.path"));
        assertTrue(TrainConfig.resumable("optim.lr"));
        assertFalse(TrainConfig.resumable("training.batch_size"));
        assertFalse(TrainConfig.resumable("training.seed"));
        assertFalse(TrainConfig.resumable("model.ngf"));
        assertNull(TrainConfig.bundledText("../pom"));
    }
}
