// Timing harness for llama.cpp (our own code, written against the public C API in llama.h).
// It measures what `expertscope bench` measures, so that the two can be run side by side on one GGUF file:
//   prefill    = one llama_decode of the whole N-token prompt (fresh cache), logits of the last token only;
//   generation = G further tokens, one llama_decode each, greedy (argmax of the last logits).
// Each repetition starts from a cleared cache. One JSON line per repetition, then one summary line with medians.
// With --prompt-file (one prompt of comma-separated token ids a line), a repetition prefills every prompt in turn, each
// into a cleared cache, and reports their total tokens and seconds: the forward passes a routing probe needs.
//
// Only llama.h is used (no ggml header), so the file compiles against upstream llama.cpp and against copies
// that rename the ggml symbols; cache types are passed as ggml type numbers, which both share.

#include "llama.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

struct Options {
    std::string model;
    std::string promptFile;
    int threads = 2;
    int promptTokens = 512;
    int generatedTokens = 32;
    int repetitions = 3;
    int warmups = 1;
    int ubatch = 512;           // llama.cpp's default physical batch
    unsigned seed = 1234;
    std::string cacheTypeK = "f16";
    std::string cacheTypeV = "f16";
    bool flashAttention = true; // ExpertScope's default attention is the flash kernel too
    bool quiet = true;
};

[[noreturn]] void usage(const char* message) {
    if (message != nullptr) std::fprintf(stderr, "harness: %s\n", message);
    std::fprintf(stderr,
        "usage: harness --model FILE.gguf [--threads 2] [--prompt-tokens 512 | --prompt-file IDS.txt] [--gen-tokens 32] [--repetitions 3]\n"
        "               [--warmups 1] [--ubatch 512] [--seed 1234] [-ctk f16] [-ctv f16] [--no-flash-attn] [--verbose]\n"
        "cache types: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1\n");
    std::exit(2);
}

int parsePositive(const char* name, const char* text, int minimum) {
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < minimum || value > 1000000) {
        std::fprintf(stderr, "harness: %s must be an integer >= %d, got '%s'\n", name, minimum, text);
        std::exit(2);
    }
    return static_cast<int>(value);
}

// ggml type numbers (stable across llama.cpp versions: they are written into GGUF files).
int cacheTypeNumber(const std::string& name) {
    if (name == "f32") return 0;
    if (name == "f16") return 1;
    if (name == "q4_0") return 2;
    if (name == "q4_1") return 3;
    if (name == "q5_0") return 6;
    if (name == "q5_1") return 7;
    if (name == "q8_0") return 8;
    if (name == "bf16") return 30;
    std::fprintf(stderr, "harness: unknown cache type '%s'\n", name.c_str());
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage((a + " needs a value").c_str());
            return argv[++i];
        };
        if (a == "--model" || a == "-m") o.model = value();
        else if (a == "--threads" || a == "-t") o.threads = parsePositive("--threads", value(), 1);
        else if (a == "--prompt-tokens" || a == "-p") o.promptTokens = parsePositive("--prompt-tokens", value(), 1);
        else if (a == "--prompt-file") o.promptFile = value();
        else if (a == "--gen-tokens" || a == "-n") o.generatedTokens = parsePositive("--gen-tokens", value(), 0);
        else if (a == "--repetitions" || a == "-r") o.repetitions = parsePositive("--repetitions", value(), 1);
        else if (a == "--warmups") o.warmups = parsePositive("--warmups", value(), 0);
        else if (a == "--ubatch") o.ubatch = parsePositive("--ubatch", value(), 1);
        else if (a == "--seed") o.seed = static_cast<unsigned>(parsePositive("--seed", value(), 0));
        else if (a == "-ctk" || a == "--cache-type-k") o.cacheTypeK = value();
        else if (a == "-ctv" || a == "--cache-type-v") o.cacheTypeV = value();
        else if (a == "--no-flash-attn" || a == "-nofa") o.flashAttention = false;
        else if (a == "--verbose") o.quiet = false;
        else if (a == "--help" || a == "-h") usage(nullptr);
        else usage(("unknown option " + a).c_str());
    }
    if (o.model.empty()) usage("--model is required");
    cacheTypeNumber(o.cacheTypeK);
    cacheTypeNumber(o.cacheTypeV);
    return o;
}

// One prompt a line, token ids separated by commas (spaces allowed); blank lines are skipped.
std::vector<std::vector<llama_token>> readPromptFile(const std::string& path, int vocabularySize) {
    std::ifstream file(path);
    if (!file) {
        std::fprintf(stderr, "harness: cannot read prompt file %s\n", path.c_str());
        std::exit(2);
    }
    std::vector<std::vector<llama_token>> prompts;
    std::string line;
    for (int lineNumber = 1; std::getline(file, line); lineNumber++) {
        std::vector<llama_token> ids;
        const char* p = line.c_str();
        while (*p != '\0') {
            while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\r') p++;
            if (*p == '\0') break;
            char* end = nullptr;
            long id = std::strtol(p, &end, 10);
            if (end == p || id < 0 || id >= vocabularySize) {
                std::fprintf(stderr, "harness: %s line %d: '%.20s' is not a token id below %d\n", path.c_str(), lineNumber, p, vocabularySize);
                std::exit(2);
            }
            ids.push_back(static_cast<llama_token>(id));
            p = end;
        }
        if (!ids.empty()) prompts.push_back(std::move(ids));
    }
    if (prompts.empty()) {
        std::fprintf(stderr, "harness: prompt file %s holds no token ids\n", path.c_str());
        std::exit(2);
    }
    return prompts;
}

double seconds(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double loadAverage() {
    std::ifstream file("/proc/loadavg");
    double one = -1;
    if (!(file >> one)) return -1;
    return one;
}

// A template so that the log level's enum type (ggml_log_level, or a renamed copy) is deduced, not named.
template <typename Level>
void quietLog(Level level, const char* text, void*) {
    if (static_cast<int>(level) == 4) std::fputs(text, stderr); // 4 = error in ggml's log levels
}

std::string jsonString(const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') { out += '\\'; out += static_cast<char>(c); }
        else if (c < 0x20) { char escaped[8]; std::snprintf(escaped, sizeof escaped, "\\u%04x", c); out += escaped; }
        else out += static_cast<char>(c);
    }
    return out + "\"";
}

struct Timing {
    double prefill;
    double generation;
};

Timing runOnce(llama_context* context, const llama_vocab* vocab, std::vector<llama_token>& prompt, int generatedTokens) {
    llama_memory_clear(llama_get_memory(context), true);
    auto start = std::chrono::steady_clock::now();
    if (llama_decode(context, llama_batch_get_one(prompt.data(), static_cast<int32_t>(prompt.size()))) != 0) {
        std::fprintf(stderr, "harness: llama_decode of the prompt failed\n");
        std::exit(1);
    }
    // Reading the logits waits for the whole graph, as ExpertScope's Append returns them.
    const float* logits = llama_get_logits_ith(context, -1);
    double prefill = seconds(start);
    int vocabularySize = llama_vocab_n_tokens(vocab);
    start = std::chrono::steady_clock::now();
    for (int g = 0; g < generatedTokens; g++) {
        llama_token next = static_cast<llama_token>(std::max_element(logits, logits + vocabularySize) - logits);
        if (llama_decode(context, llama_batch_get_one(&next, 1)) != 0) {
            std::fprintf(stderr, "harness: llama_decode of generated token %d failed\n", g);
            std::exit(1);
        }
        logits = llama_get_logits_ith(context, -1);
    }
    double generation = seconds(start);
    return {prefill, generation};
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (o.quiet) llama_log_set(quietLog, nullptr);
    llama_backend_init();

    llama_model_params modelParams = llama_model_default_params();
    llama_model* model = llama_model_load_from_file(o.model.c_str(), modelParams);
    if (model == nullptr) {
        std::fprintf(stderr, "harness: %s: llama.cpp could not load the model (run with --verbose for its log)\n", o.model.c_str());
        return 1;
    }
    const llama_vocab* vocab = llama_model_get_vocab(model);
    std::vector<std::vector<llama_token>> prompts;
    if (!o.promptFile.empty()) {
        prompts = readPromptFile(o.promptFile, llama_vocab_n_tokens(vocab));
        o.promptTokens = 0;
        for (const auto& prompt : prompts) o.promptTokens = std::max(o.promptTokens, static_cast<int>(prompt.size()));
        o.generatedTokens = 0; // prompt files time prefill only
    }

    llama_context_params contextParams = llama_context_default_params();
    int total = o.promptTokens + o.generatedTokens;
    contextParams.n_ctx = static_cast<uint32_t>(((total + 255) / 256) * 256);
    contextParams.n_batch = static_cast<uint32_t>(o.promptTokens); // the whole prompt in one llama_decode
    contextParams.n_ubatch = static_cast<uint32_t>(std::min(o.ubatch, o.promptTokens));
    contextParams.n_seq_max = 1;
    contextParams.n_threads = o.threads;
    contextParams.n_threads_batch = o.threads;
    contextParams.type_k = static_cast<decltype(contextParams.type_k)>(cacheTypeNumber(o.cacheTypeK));
    contextParams.type_v = static_cast<decltype(contextParams.type_v)>(cacheTypeNumber(o.cacheTypeV));
    contextParams.flash_attn_type = o.flashAttention ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    contextParams.no_perf = true;
    llama_context* context = llama_init_from_model(model, contextParams);
    if (context == nullptr) {
        std::fprintf(stderr, "harness: %s: llama.cpp could not create a context of %d tokens\n", o.model.c_str(), total);
        return 1;
    }

    if (prompts.empty()) {
        std::mt19937 random(o.seed);
        std::uniform_int_distribution<int> tokenId(0, llama_vocab_n_tokens(vocab) - 1);
        std::vector<llama_token> prompt(static_cast<size_t>(o.promptTokens));
        for (auto& t : prompt) t = tokenId(random);
        prompts.push_back(std::move(prompt));
    }
    long long prefillTokens = 0;
    for (const auto& prompt : prompts) prefillTokens += static_cast<long long>(prompt.size());

    auto runAll = [&]() {
        Timing sum{0, 0};
        for (auto& prompt : prompts) {
            Timing t = runOnce(context, vocab, prompt, o.generatedTokens);
            sum.prefill += t.prefill;
            sum.generation += t.generation;
        }
        return sum;
    };
    for (int w = 0; w < o.warmups; w++) runAll();

    std::vector<double> prefill, generation;
    for (int r = 0; r < o.repetitions; r++) {
        Timing t = runAll();
        prefill.push_back(t.prefill);
        generation.push_back(t.generation);
        std::printf("{\"repetition\":%d,\"prompts\":%zu,\"prefill_tokens\":%lld,\"prefill_seconds\":%.6f,\"prefill_tokens_per_s\":%.3f,"
                    "\"generation_seconds\":%.6f,\"generation_tokens_per_s\":%.3f}\n",
            r + 1, prompts.size(), prefillTokens, t.prefill, prefillTokens / t.prefill, t.generation,
            o.generatedTokens > 0 ? o.generatedTokens / t.generation : 0.0);
        std::fflush(stdout);
    }

    double prefillMedian = median(prefill);
    double generationMedian = median(generation);
    std::printf("{\"summary\":true,\"model\":%s,\"threads\":%d,\"prompts\":%zu,\"prefill_tokens\":%lld,\"prefill_seconds\":%.6f,\"prompt_tokens\":%d,\"gen_tokens\":%d,\"repetitions\":%d,"
                "\"ubatch\":%u,\"cache_type_k\":\"%s\",\"cache_type_v\":\"%s\",\"flash_attn\":%s,"
                "\"prefill_tokens_per_s\":%.3f,\"generation_tokens_per_s\":%.3f,\"load_average_1min\":%.2f,\"system\":%s}\n",
        jsonString(o.model).c_str(), o.threads, prompts.size(), prefillTokens, prefillMedian, o.promptTokens, o.generatedTokens, o.repetitions, llama_n_ubatch(context),
        o.cacheTypeK.c_str(), o.cacheTypeV.c_str(), o.flashAttention ? "true" : "false",
        prefillTokens / prefillMedian, o.generatedTokens > 0 ? o.generatedTokens / generationMedian : 0.0,
        loadAverage(), jsonString(llama_print_system_info()).c_str());

    llama_free(context);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
