package ncsn.train;

/**
 * A training configuration that cannot be used: the message is one paragraph naming the config
 * (file, bundled name or checkpoint), every offending key and what is wrong with it.
 */
public final class ConfigException extends Exception {
    public ConfigException(String message) {
        super(message);
    }
}
