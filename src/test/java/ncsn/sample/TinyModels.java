package ncsn.sample;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import ncsn.io.SafeTensors;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.model.ModelWeights;
import ncsn.optim.Adam;
import ncsn.tensor.DType;
import ncsn.train.Checkpoint;
import ncsn.train.TrainConfig;

/** Tiny random-weight score networks (ngf 4, L 3) and checkpoint files of them, for the sampling tests. */
public final class TinyModels {
    private TinyModels() {}

    /** A float32 CondRefineNetDilated with PyTorch-style random init. */
    public static CondRefineNetDilated model(int channels, long seed) {
        CondRefineNetDilated m = new CondRefineNetDilated(new ModelConfig(channels, 4, 3, false), DType.F32);
        m.initialize(seed);
        return m;
    }

    /** A weights-only safetensors file (reference state_dict names, no metadata). */
    public static Path weightsFile(Path file, int channels, long seed) throws IOException {
        ModelWeights.put(new SafeTensors.Writer(), model(channels, seed)).write(file);
        return file;
    }

    /** A training checkpoint whose stored config says 1 channel, image size {@code size}, 3 levels 1 -> 0.05. */
    public static Path trainingCheckpoint(Path file, int size, long seed) throws Exception {
        String yaml = String.join("\n",
                "training:", "  batch_size: 4", "  n_iters: 10", "  seed: 42",
                "data:", "  dataset: MNIST", "  image_size: " + size, "  channels: 1", "  path: '/nonexistent'",
                "model:", "  num_classes: 3", "  ngf: 4", "  sigma_begin: 1.0", "  sigma_end: 0.05", "");
        TrainConfig cfg = TrainConfig.parse(yaml, "tiny sampling test config", "tiny", List.of());
        CondRefineNetDilated m = new CondRefineNetDilated(cfg.modelConfig(), DType.F32);
        m.initialize(seed);
        Adam adam = new Adam(new java.util.ArrayList<>(m.parameters().values()));
        Checkpoint.write(file, m.parameters(), adam, null, new Checkpoint.Position(0, 0, 0, 0), cfg, 42, "test");
        return file;
    }
}
