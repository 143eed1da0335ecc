// Writes an i-quant GGUF (IQ2_XXS or IQ1_S experts) from a float32 GGUF with ggml's own quantizers, so that
// ExpertScope and llama.cpp can be timed on an IQ file (our own code, written against ggml.h and gguf.h).
//
// Why not llama_model_quantize: the llama.cpp copy the timings use (vendored in mybigday/llama.rn) ships llama.h's
// declaration but not llama-quant.cpp, so the call does not link. This program does what that function does for a
// float32 input, tensor by tensor: it picks each tensor's type by llama.cpp's rules for the IQ2_XXS / IQ1_S file
// types (the facts are listed in the README), quantizes with ggml_quantize_chunk, checks each result with
// ggml_validate_row_data, and writes the same metadata with general.file_type set.
//
// The importance matrix: ggml's IQ2_XXS / IQ2_XS / IQ1_S quantizers refuse to run without one. Every quantized tensor
// gets a matrix of ones (one weight per input column), i.e. every column counts the same: the search becomes the
// unweighted one (ggml still scales each element's error by its own magnitude, as it does without a matrix). The
// files are made for speed ratios only; a real model would be quantized with a matrix from calibration text.
//
// Memory: the input is memory-mapped and one tensor at a time is quantized, so the resident set stays near the
// largest tensor's float32 size plus its quantized size.

#include "ggml.h"
#include "gguf.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// The vendored copy prefixes every ggml/gguf symbol with lm_; upstream does not.
#if defined(LM_GGML_API)
#define GG(name) lm_##name
#else
#define GG(name) name
#endif

using ggml_type_t = enum GG(ggml_type);

namespace {

// ggml type numbers (stable: they are written into GGUF files).
constexpr int kF32 = 0, kF16 = 1, kQ8_0 = 8, kQ2_K = 10, kQ4_K = 12, kQ5_K = 13, kIQ2_XXS = 16, kIQ1_S = 19,
              kIQ4_NL = 20;
// llama_ftype numbers written to general.file_type.
constexpr uint32_t kFtypeIQ2_XXS = 19, kFtypeIQ1_S = 24;

struct Options {
    std::string input;
    std::string output;
    std::string type;
    int threads = 2;
    bool dryRun = false;
};

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "iq-quantize: %s\n", message.c_str());
    std::exit(1);
}

[[noreturn]] void usage(const char* error) {
    if (error != nullptr) std::fprintf(stderr, "iq-quantize: %s\n\n", error);
    std::fprintf(stderr,
        "usage: iq-quantize --in MODEL-F32.gguf --out MODEL-IQ.gguf --type iq2_xxs|iq1_s [--threads N] [--dry-run]\n"
        "  Types every matrix as llama.cpp's quantize does for that file type and quantizes it with ggml's quantizers\n"
        "  and an importance matrix of ones. --dry-run prints the plan without writing.\n");
    std::exit(error != nullptr ? 2 : 0);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage((a + " needs a value").c_str());
            return argv[++i];
        };
        if (a == "--in") o.input = value();
        else if (a == "--out") o.output = value();
        else if (a == "--type") o.type = value();
        else if (a == "--threads") o.threads = std::max(1, std::atoi(value()));
        else if (a == "--dry-run") o.dryRun = true;
        else if (a == "--help" || a == "-h") usage(nullptr);
        else usage(("unknown option " + a).c_str());
    }
    if (o.input.empty()) usage("--in is required");
    if (o.output.empty() && !o.dryRun) usage("--out is required");
    if (o.type != "iq2_xxs" && o.type != "iq1_s") usage("--type must be iq2_xxs or iq1_s");
    return o;
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

bool endsWith(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t keyInt(const GG(gguf_context) * gguf, const std::string& key, int64_t fallback) {
    const int64_t id = GG(gguf_find_key)(gguf, key.c_str());
    if (id < 0) return fallback;
    switch (GG(gguf_get_kv_type)(gguf, id)) {
        case 4: return GG(gguf_get_val_u32)(gguf, id);
        case 5: return GG(gguf_get_val_i32)(gguf, id);
        case 10: return static_cast<int64_t>(GG(gguf_get_val_u64)(gguf, id));
        case 11: return GG(gguf_get_val_i64)(gguf, id);
        default: return fallback;
    }
}

// The model facts llama.cpp's type choice depends on.
struct ModelFacts {
    int64_t experts = 0;
    int64_t groupedQueryRatio = 1; // heads per key-value head
    bool hasOutput = false;
    int ffnDownTensors = 0;
};

// llama.cpp quantizes 2-D and 3-D tensors whose name ends in "weight", except norms and routers.
bool isQuantized(const std::string& name, int dimensions) {
    return dimensions >= 2 && endsWith(name, "weight") && !contains(name, "_norm.weight") &&
           !contains(name, "ffn_gate_inp.weight");
}

// llama.cpp's choice for the IQ2_XXS / IQ1_S file types (llama_tensor_get_type in llama-quant.cpp), restricted to the
// tensor names of the architectures ExpertScope writes; ffnDownIndex counts the ffn_down tensors seen so far.
int chooseType(const std::string& name, int64_t columns, bool oneBit, const ModelFacts& facts, int& ffnDownIndex) {
    const int fileDefault = oneBit ? kIQ1_S : kIQ2_XXS;
    int type = fileDefault;
    const bool tiedEmbedding = !facts.hasOutput && name == "token_embd.weight";
    if (name == "output.weight" || tiedEmbedding) {
        type = columns % 256 != 0 ? kQ8_0 : kQ5_K;
    } else if (name == "token_embd.weight") {
        type = kQ2_K;
    } else if (contains(name, "attn_v.weight")) {
        type = facts.groupedQueryRatio >= 4 || facts.experts >= 4 ? kQ4_K : kQ2_K;
    } else if (facts.experts == 8 && contains(name, "attn_k.weight")) {
        type = kQ4_K;
    } else if (contains(name, "ffn_down")) {
        if (ffnDownIndex < facts.ffnDownTensors / 8) type = kQ2_K;
        ffnDownIndex++;
    } else if (contains(name, "attn_output.weight")) {
        if (facts.experts == 8) type = kQ5_K;
        else if (oneBit) type = kIQ2_XXS;
    }
    // Rows that are not whole 256-element blocks fall back as llama.cpp does.
    if (columns % GG(ggml_blck_size)(static_cast<ggml_type_t>(type)) != 0) {
        if (type == kIQ2_XXS || type == kIQ1_S) type = kIQ4_NL;
        else if (type == kQ2_K) type = 2; // Q4_0
        else if (type == kQ4_K) type = 6; // Q5_0
        else if (type == kQ5_K) type = 7; // Q5_1
        if (columns % GG(ggml_blck_size)(static_cast<ggml_type_t>(type)) != 0) type = kF16;
    }
    return type;
}

// Quantizes rows [0, rows) of one 2-D slice on `threads` threads; rows are independent, so the bytes do not depend
// on the thread count.
void quantizeSlice(ggml_type_t type, const float* source, char* destination, int64_t rows, int64_t columns,
                   const float* importance, int threads) {
    const size_t rowBytes = GG(ggml_row_size)(type, columns);
    const int64_t rowsPerChunk = 16;
    std::atomic<int64_t> next{0};
    std::atomic<bool> valid{true};
    auto work = [&]() {
        for (;;) {
            const int64_t first = next.fetch_add(rowsPerChunk);
            if (first >= rows) return;
            const int64_t count = std::min(rowsPerChunk, rows - first);
            const size_t bytes = GG(ggml_quantize_chunk)(type, source, destination, first * columns, count, columns, importance);
            if (!GG(ggml_validate_row_data)(type, destination + first * rowBytes, bytes)) valid = false;
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; t++) pool.emplace_back(work);
    work();
    for (auto& thread : pool) thread.join();
    if (!valid) fail("ggml_validate_row_data rejected a quantized row (NaN or infinite scale)");
}

void writeAll(FILE* file, const void* data, size_t bytes, const std::string& path) {
    if (bytes != 0 && std::fwrite(data, 1, bytes, file) != bytes) fail("cannot write " + path);
}

void padTo(FILE* file, size_t alignment, const std::string& path) {
    const long position = std::ftell(file);
    if (position < 0) fail("cannot tell the position in " + path);
    const size_t padding = (alignment - static_cast<size_t>(position) % alignment) % alignment;
    static const char zeros[64] = {};
    for (size_t left = padding; left > 0;) {
        const size_t n = std::min(left, sizeof(zeros));
        writeAll(file, zeros, n, path);
        left -= n;
    }
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    const bool oneBit = options.type == "iq1_s";

    GG(ggml_context) * tensors = nullptr;
    GG(gguf_init_params) params = {/*no_alloc =*/ true, /*ctx =*/ &tensors};
    GG(gguf_context) * input = GG(gguf_init_from_file)(options.input.c_str(), params);
    if (input == nullptr) fail(options.input + ": not a readable GGUF file");

    const int64_t architectureKey = GG(gguf_find_key)(input, "general.architecture");
    if (architectureKey < 0) fail(options.input + ": no general.architecture key");
    const std::string architecture = GG(gguf_get_val_str)(input, architectureKey);

    const int64_t tensorCount = GG(gguf_get_n_tensors)(input);
    ModelFacts facts;
    facts.experts = keyInt(input, architecture + ".expert_count", 0);
    const int64_t heads = keyInt(input, architecture + ".attention.head_count", 1);
    const int64_t keyValueHeads = keyInt(input, architecture + ".attention.head_count_kv", heads);
    facts.groupedQueryRatio = keyValueHeads > 0 ? heads / keyValueHeads : 1;
    for (int64_t i = 0; i < tensorCount; i++) {
        const std::string name = GG(gguf_get_tensor_name)(input, i);
        if (name == "output.weight") facts.hasOutput = true;
        if (contains(name, "ffn_down") && endsWith(name, "weight")) facts.ffnDownTensors++;
    }

    // The plan: every tensor's new type, in file order.
    GG(gguf_context) * output = GG(gguf_init_empty)();
    GG(gguf_set_kv)(output, input);
    GG(gguf_set_val_u32)(output, "general.quantization_version", 2);
    GG(gguf_set_val_u32)(output, "general.file_type", oneBit ? kFtypeIQ1_S : kFtypeIQ2_XXS);
    std::vector<int> newTypes(tensorCount);
    int ffnDownIndex = 0;
    for (int64_t i = 0; i < tensorCount; i++) {
        const std::string name = GG(gguf_get_tensor_name)(input, i);
        GG(ggml_tensor) * tensor = GG(ggml_get_tensor)(tensors, name.c_str());
        const int oldType = tensor->type;
        int type = oldType;
        if (isQuantized(name, GG(ggml_n_dims)(tensor))) {
            if (oldType != kF32) fail(options.input + ": tensor " + name + " is " + GG(ggml_type_name)(tensor->type) + "; this program quantizes float32 tensors only");
            type = chooseType(name, tensor->ne[0], oneBit, facts, ffnDownIndex);
        }
        newTypes[i] = type;
        GG(gguf_add_tensor)(output, tensor);
        GG(gguf_set_tensor_type)(output, name.c_str(), static_cast<ggml_type_t>(type));
        std::printf("%-32s [%6lld, %6lld, %4lld] %-5s -> %s\n", name.c_str(), (long long)tensor->ne[0], (long long)tensor->ne[1],
                    (long long)tensor->ne[2], GG(ggml_type_name)(tensor->type), GG(ggml_type_name)(static_cast<ggml_type_t>(type)));
    }
    if (options.dryRun) return 0;

    const int descriptor = open(options.input.c_str(), O_RDONLY);
    struct stat status {};
    if (descriptor < 0 || fstat(descriptor, &status) != 0) fail("cannot open " + options.input);
    const auto* mapped = static_cast<const char*>(mmap(nullptr, status.st_size, PROT_READ, MAP_PRIVATE, descriptor, 0));
    if (mapped == MAP_FAILED) fail("cannot map " + options.input);
    const size_t dataOffset = GG(gguf_get_data_offset)(input);

    FILE* file = std::fopen(options.output.c_str(), "wb");
    if (file == nullptr) fail("cannot create " + options.output);
    std::vector<char> meta(GG(gguf_get_meta_size)(output));
    GG(gguf_get_meta_data)(output, meta.data());
    writeAll(file, meta.data(), meta.size(), options.output);
    const size_t alignment = GG(gguf_get_alignment)(output);
    padTo(file, alignment, options.output);

    std::vector<char> quantized;
    for (int64_t i = 0; i < tensorCount; i++) {
        const std::string name = GG(gguf_get_tensor_name)(input, i);
        GG(ggml_tensor) * tensor = GG(ggml_get_tensor)(tensors, name.c_str());
        const char* source = mapped + dataOffset + GG(gguf_get_tensor_offset)(input, i);
        const size_t sourceBytes = GG(ggml_nbytes)(tensor);
        if (dataOffset + GG(gguf_get_tensor_offset)(input, i) + sourceBytes > static_cast<size_t>(status.st_size)) fail(options.input + ": tensor " + name + " runs past the end of the file");
        if (newTypes[i] == tensor->type) {
            writeAll(file, source, sourceBytes, options.output);
        } else {
            const auto type = static_cast<ggml_type_t>(newTypes[i]);
            const int64_t columns = tensor->ne[0];
            const int64_t rows = tensor->ne[1];
            const int64_t slices = tensor->ne[2] * tensor->ne[3];
            const size_t sliceBytes = GG(ggml_row_size)(type, columns) * rows;
            quantized.resize(sliceBytes * slices);
            const std::vector<float> ones(columns, 1.0f);
            for (int64_t s = 0; s < slices; s++) {
                const auto* floats = reinterpret_cast<const float*>(source) + s * rows * columns;
                quantizeSlice(type, floats, quantized.data() + s * sliceBytes, rows, columns, ones.data(), options.threads);
            }
            writeAll(file, quantized.data(), quantized.size(), options.output);
            std::fprintf(stderr, "quantized %s to %s\n", name.c_str(), GG(ggml_type_name)(type));
        }
        padTo(file, alignment, options.output);
    }
    if (std::fclose(file) != 0) fail("cannot close " + options.output);
    munmap(const_cast<char*>(mapped), status.st_size);
    close(descriptor);
    GG(gguf_free)(output);
    GG(gguf_free)(input);
    GG(ggml_free)(tensors);
    GG(ggml_quantize_free)();
    std::printf("wrote %s\n", options.output.c_str());
    return 0;
}
