package ncsn.model;

/**
 * Sizes of a {@link CondRefineNetDilated} (spec section 3).
 *
 * @param channels       image channels C (1 for MNIST / Fashion-MNIST, 3 for CIFAR-10 / CelebA)
 * @param ngf            base width: res1 and refine4 run at ngf channels, res2..res4 and
 *                       refine1..refine3 at 2*ngf (64 for MNIST, 128 for CIFAR-10 / CelebA); at
 *                       least 2, since CIN++ needs two channels for its across-channel variance
 * @param numClasses     number of noise levels L (rows of every CIN++ embedding table)
 * @param logitTransform true when the data pipeline feeds logit-space images; then the network
 *                       skips its own 2x - 1 input mapping, as the reference does
 */
public record ModelConfig(int channels, int ngf, int numClasses, boolean logitTransform) {
    public ModelConfig {
        if (channels < 1) throw new IllegalArgumentException("model config: channels must be at least 1, got " + channels);
        if (ngf < 2)
            throw new IllegalArgumentException("model config: ngf must be at least 2 (CIN++ normalises across"
                    + " channels with an unbiased variance), got " + ngf);
        if (numClasses < 1)
            throw new IllegalArgumentException("model config: numClasses (noise levels) must be at least 1, got " + numClasses);
    }

    /** The paper's MNIST / Fashion-MNIST model: 1 channel, ngf 64, 10 levels. */
    public static ModelConfig mnist() {
        return new ModelConfig(1, 64, 10, false);
    }

    /** The paper's CIFAR-10 / CelebA model: 3 channels, ngf 128, 10 levels. */
    public static ModelConfig cifar10() {
        return new ModelConfig(3, 128, 10, false);
    }

    @Override
    public String toString() {
        return "channels " + channels + ", ngf " + ngf + ", " + numClasses + " noise levels"
                + (logitTransform ? ", logit-space input" : "");
    }
}
