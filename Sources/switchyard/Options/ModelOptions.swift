import Foundation
import Switchyard

/// `--weights native|f32`, `--kv-cache f32|f16` and `--bf16-activations bf16|f32`: how the model's
/// weights and its KV cache are held, and how activations meet BF16 weights.
struct WeightsOption: ParsableArguments {
    @Option(
        help:
            "native: keep weights stored as Q8_0/Q4_0/Q4_1 (GGUF) or F16/BF16 (GGUF, safetensors) in that type, multiplied by kernels that read it (GGUF Q5_0/Q5_1/Q5_K/IQ4_NL/IQ4_XS, Q4_K and Q6_K rewritten as Q8_0, Q4_1 and F16, Q2_K/Q3_K requantised to Q8_0); f32: widen everything to Float32 at load (the parity path)."
    )
    var weights: GGUFModel.WeightFormat = .native
    @Option(
        help:
            "Keys and values of the KV cache: f16 halves the bytes decode reads at depth (llama.cpp's default); f32 keeps them exact. Default: f16 for a GGUF file with native weights, else f32."
    )
    var kvCache: KVCache.Precision?
    @Option(
        help:
            "Activations multiplied by BF16 weights in batches and prefill: bf16 rounds them to bfloat16 for bfloat16 dot products (AVX-512 BF16: twice the multiply-adds per cycle; llama.cpp's arithmetic); f32 keeps them exact. Default: bf16 for a GGUF file with native weights, else f32."
    )
    var bf16Activations: BF16Activations?

    /// `--kv-cache` and `--bf16-activations`, where given, on a loaded `model`.
    func apply(to model: LlamaModel) {
        if let kvCache { model.cachePrecision = kvCache }
        if let bf16Activations { model.bf16Activations = bf16Activations }
    }

    /// The model at `path` (a directory or a GGUF file), held as these options say.
    func load(_ path: URL) throws -> LlamaModel {
        let model = try LlamaModel.load(path: path, weights: weights)
        apply(to: model)
        return model
    }
}

/// `--model DIR|FILE` and `--weights`: the base model, shared by every command that loads one.
struct ModelOptions: ParsableArguments {
    @Option(
        placeholder: "DIR|FILE",
        help:
            "Base model: a Hugging Face directory (config.json, safetensors, tokenizer.json) or a GGUF file. Default: the embedded model."
    )
    var model: String?
    @OptionGroup var format: WeightsOption

    /// `--model`, else the embedded model (see `ModelLocator`).
    func directory() throws -> URL {
        try model.map { URL(fileURLWithPath: $0) } ?? ModelLocator.defaultModelDirectory()
    }

    /// The model at `path` (a directory or a GGUF file), held as `--weights` and `--kv-cache` say.
    func load(_ path: URL) throws -> LlamaModel {
        try format.load(path)
    }

    /// The base model's config.json (commands that check experts against the base without loading it).
    func config() throws -> ModelConfig {
        try ModelConfig.load(from: try directory().appendingPathComponent("config.json"))
    }
}

/// `--registry DIR`: the expert registry.
struct RegistryOptions: ParsableArguments {
    @Option(placeholder: "DIR", help: "Expert registry. Default: Models/experts of the embedded models.")
    var registry: String?

    @Flag(
        help:
            "Load experts recorded (switchyard_base.json) as trained for another base model; by default they are refused, naming both fingerprints."
    )
    var allowBaseMismatch: Bool

    var directory: URL { registry.map { URL(fileURLWithPath: $0) } ?? ModelLocator.defaultRegistryDirectory() }

    /// The registry for experts of the loaded `model`: shapes checked against its config, recorded
    /// bases against its fingerprint (`--allow-base-mismatch` overrides); adapters written into it
    /// record its fingerprint. `create` makes a missing directory (commands that add).
    func open(model: LlamaModel, create: Bool = false, budgetBytes: Int = 1 << 30) throws -> ExpertRegistry {
        try ExpertRegistry(
            directory: directory, model: model, allowBaseMismatch: allowBaseMismatch,
            budgetBytes: budgetBytes, create: create)
    }

    /// The registry checked against the base's config alone (commands that do not load the
    /// weights): recorded bases are shown and checked for staleness, not compared.
    func open(base: ModelConfig, create: Bool = false, budgetBytes: Int = 1 << 30) throws -> ExpertRegistry {
        try ExpertRegistry(
            directory: directory, base: base, allowBaseMismatch: allowBaseMismatch,
            budgetBytes: budgetBytes, create: create)
    }
}

/// `--format text|json`.
struct FormatOption: ParsableArguments {
    @Option(help: "Output format.")
    var format: OutputFormat = .text

    var json: Bool { format == .json }
}
