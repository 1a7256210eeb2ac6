#include "perfmodel/published.h"

#include <cstdio>
#include <set>

#include "core/error.h"
#include "model/preset.h"
#include "perfmodel/hardware.h"
#include "perfmodel/json_node.h"
#include "quant/codec.h"

namespace moelab::perfmodel {

namespace {

// The preset's optional n_dense_layers lives only in its JSON (Config has no field).
int64_t preset_dense_layers(const std::string& name) {
  const auto path = model::presets_dir() / (name + ".json");
  const JsonNode root = JsonNode::load(path);
  return root.optional_integer("n_dense_layers").value_or(0);
}

model::Config config_from_shape(const JsonNode& s) {
  model::Config c;
  auto count = [&](const char* key, bool required) -> int64_t {
    if (!required && !s.has(key)) return 0;
    const int64_t v = s.at(key).integer();
    if (v < 0) s.at(key).fail("expected a non-negative integer");
    return v;
  };
  c.n_vocab = count("n_vocab", true);
  c.n_embd = count("n_embd", true);
  c.n_layer = count("n_layer", true);
  c.n_head = count("n_head", true);
  c.n_head_kv = count("n_head_kv", true);
  c.head_dim = count("head_dim", true);
  c.n_ff = count("n_ff", false);
  c.n_expert = count("n_expert", false);
  c.n_expert_used = count("n_expert_used", false);
  c.n_ff_exp = count("n_ff_exp", false);
  c.n_ff_shexp = count("n_ff_shexp", false);
  if (c.n_embd == 0 || c.n_layer == 0 || c.n_head == 0 || c.n_head_kv == 0 || c.head_dim == 0 || c.n_vocab == 0)
    s.fail("dimensions n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim must be positive");
  if (c.n_expert > 0 && (c.n_expert_used == 0 || c.n_expert_used > c.n_expert || c.n_ff_exp == 0))
    s.fail("MoE shape needs 0 < n_expert_used <= n_expert and n_ff_exp > 0");
  if (c.n_expert == 0 && c.n_ff == 0) s.fail("dense shape needs n_ff > 0");
  return c;
}

struct QuantPart {
  std::string codec;
  double bits = 0;
};

QuantPart read_quant_part(const JsonNode& q) {
  q.allow_only({"codec", "bits", "bits_per_weight", "note"});
  QuantPart part;
  part.codec = q.string("codec");
  const quant::Codec* codec = quant::find_codec(part.codec);
  if (auto bpw = q.optional_positive_number("bits_per_weight")) {
    part.bits = *bpw;
  } else {
    if (!codec)
      q.at("codec").fail("unknown codec '" + part.codec + "' and no bits_per_weight given (known: " +
                         quant::known_codec_names() + ")");
    part.bits = codec->bits_per_weight();
  }
  if (q.has("bits")) {
    const int64_t bits = q.at("bits").integer();
    if (bits < 1 || bits > 32) q.at("bits").fail("expected 1..32");
  }
  return part;
}

std::string fmt_bits(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", b);
  return buf;
}

PublishedRow read_row(const JsonNode& r, const std::filesystem::path& hw_dir, const std::set<std::string>& hw_ids,
                      const std::map<std::string, EngineConstants>& engines) {
  r.expect_object();
  r.allow_only({"id", "system", "source", "hardware", "model", "quantization", "config", "metric", "value", "value_low",
                "value_high", "notes", "engine", "calibration", "estimate"});
  PublishedRow row;
  row.pointer = r.pointer();
  row.id = r.string("id");
  row.system = r.string("system");
  row.source = r.string("source");
  if (row.source.empty()) r.at("source").fail("empty source: every row needs one");
  row.hardware = r.string("hardware");
  if (!hw_ids.count(row.hardware))
    r.at("hardware").fail("no hardware profile '" + row.hardware + "' in " + hw_dir.string());
  row.notes = r.optional_string("notes").value_or("");
  row.calibration = r.optional_boolean("calibration").value_or(false);
  row.estimate = r.optional_boolean("estimate").value_or(false);
  if (auto engine = r.optional_string("engine")) {
    const auto it = engines.find(*engine);
    if (it == engines.end()) r.at("engine").fail("no engine '" + *engine + "' in the file's engines table");
    row.engine = *engine;
    row.scenario.engine_layer_overhead_us = it->second.layer_overhead_us.value;
  }

  // Model: a preset name, or {"shape": {...}} / {"coarse": {...}}.
  const JsonNode m = r.at("model");
  model::Config cfg;
  bool have_cfg = false;
  if (m.json().is_string()) {
    row.model_label = m.string();
    model::Preset preset;
    try {
      preset = model::find_preset(row.model_label);
    } catch (const Error& e) {
      m.fail(e.what());
    }
    cfg = preset.config;
    have_cfg = true;
    row.shape = shape_from_config(preset.name, cfg, preset_dense_layers(preset.name), preset.tied_embeddings);
  } else if (m.has("preset")) {
    // A preset scaled to fewer layers or a smaller vocabulary (moelab gen --layers/--vocab).
    m.allow_only({"preset", "n_layer", "n_vocab"});
    row.model_label = m.string("preset");
    model::Preset preset;
    try {
      preset = model::find_preset(row.model_label);
    } catch (const Error& e) {
      m.at("preset").fail(e.what());
    }
    const int64_t layers = m.optional_integer("n_layer").value_or(0), vocab = m.optional_integer("n_vocab").value_or(0);
    if (layers < 0 || layers > preset.config.n_layer) m.at("n_layer").fail("expected 1..the preset's n_layer");
    if (vocab < 0) m.at("n_vocab").fail("expected a positive integer");
    cfg = model::scaled(preset.config, layers, 0, vocab);
    have_cfg = true;
    row.model_label += " (" + std::to_string(cfg.n_layer) + " layers)";
    row.shape = shape_from_config(preset.name, cfg, preset_dense_layers(preset.name), preset.tied_embeddings);
  } else {
    m.expect_object();
    m.allow_only({"display_name", "source", "shape", "coarse"});
    row.model_label = m.string("display_name");
    m.string("source");
    if (m.has("shape")) {
      const JsonNode s = m.at("shape");
      s.allow_only({"n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff", "n_expert",
                    "n_expert_used", "n_ff_exp", "n_ff_shexp", "n_dense_layers", "tied_embeddings"});
      cfg = config_from_shape(s);
      have_cfg = true;
      row.shape = shape_from_config(row.model_label, cfg, s.optional_integer("n_dense_layers").value_or(0),
                                    s.optional_boolean("tied_embeddings").value_or(false));
    } else if (m.has("coarse")) {
      const JsonNode s = m.at("coarse");
      s.allow_only({"total_params", "active_params", "n_layer"});
      const double total = s.positive_number("total_params"), active = s.positive_number("active_params");
      if (active > total) s.at("active_params").fail("exceeds total_params");
      row.shape = coarse_shape(row.model_label, total, active);
      row.shape.n_layer = s.optional_integer("n_layer").value_or(0);
    } else {
      m.fail("expected a preset name, or an object with 'shape' or 'coarse'");
    }
  }

  // Quantization.
  const JsonNode q = r.at("quantization");
  q.allow_only({"experts", "resident", "label"});
  const QuantPart resident = read_quant_part(q.at("resident"));
  const QuantPart experts = q.has("experts") ? read_quant_part(q.at("experts")) : resident;
  row.quant_label = q.optional_string("label").value_or(experts.codec + " (" + fmt_bits(experts.bits) + " bpw)");

  Scenario& sc = row.scenario;
  sc.resident_codec = resident.codec;
  sc.resident_bits = resident.bits;
  sc.expert_codec = experts.codec;
  sc.expert_bits = experts.bits;

  try {
    sc.metric = parse_metric(r.string("metric"));
  } catch (const Error& e) {
    r.at("metric").fail(e.what());
  }
  row.value = r.positive_number("value");
  row.value_low = r.optional_positive_number("value_low");
  row.value_high = r.optional_positive_number("value_high");
  if (row.value_low && row.value_high && *row.value_low > *row.value_high) r.at("value_low").fail("exceeds value_high");

  // Configuration.
  const JsonNode c = r.at("config");
  c.allow_only({"io", "top_k", "page_cache", "expert_cache_gb", "expert_cache_experts", "process_ram_gb",
                "io_queue_depth", "threads", "speculation_accuracy", "expert_device", "resident_device",
                "prompt_tokens", "stream_dense_ffn", "note"});
  try {
    sc.io = parse_io_mode(c.string("io"));
  } catch (const Error& e) {
    c.at("io").fail(e.what());
  }
  if (auto k = c.optional_integer("top_k")) {
    if (*k <= 0) c.at("top_k").fail("expected a positive integer");
    if (!row.shape.is_moe() && !c.optional_boolean("stream_dense_ffn").value_or(false))
      c.at("top_k").fail("top_k given for a dense model");
    if (row.shape.is_moe() && *k > row.shape.n_expert) c.at("top_k").fail("exceeds the model's n_expert");
    sc.top_k = *k;
  }
  sc.page_cache = c.optional_boolean("page_cache").value_or(sc.io == IoMode::mmap || sc.io == IoMode::pread);
  if (sc.io == IoMode::direct && sc.page_cache) c.at("page_cache").fail("direct I/O bypasses the page cache");
  if (auto gb = c.optional_number("expert_cache_gb")) {
    if (*gb < 0) c.at("expert_cache_gb").fail("expected a non-negative number");
    sc.expert_cache_bytes = *gb * 1e9;
  }
  if (auto n = c.optional_number("expert_cache_experts")) {
    if (sc.expert_cache_bytes) c.at("expert_cache_experts").fail("give expert_cache_gb or expert_cache_experts, not both");
    if (*n < 0) c.at("expert_cache_experts").fail("expected a non-negative number");
    sc.expert_cache_bytes = *n * row.shape.expert_params * sc.expert_bits / 8;
  }
  if (auto gb = c.optional_number("process_ram_gb")) sc.process_resident_bytes = *gb * 1e9;
  if (auto qd = c.optional_positive_number("io_queue_depth")) sc.io_queue_depth = *qd;
  if (c.has("threads")) c.at("threads").integer();
  if (auto a = c.optional_number("speculation_accuracy")) {
    if (*a < 0 || *a > 1) c.at("speculation_accuracy").fail("expected a fraction in [0, 1]");
    sc.spec_accuracy = *a;
  }
  auto device = [&](const char* key, Device def) {
    if (!c.has(key)) return def;
    try {
      return parse_device(c.string(key));
    } catch (const Error& e) {
      c.at(key).fail(e.what());
    }
  };
  sc.resident_device = device("resident_device", Device::cpu);
  sc.expert_device = device("expert_device", sc.resident_device);
  if (auto p = c.optional_integer("prompt_tokens")) {
    if (*p <= 0) c.at("prompt_tokens").fail("expected a positive integer");
    sc.prompt_tokens = *p;
  } else if (sc.metric == Metric::prefill_tok_s) {
    c.fail("prefill rows need prompt_tokens");
  }
  if (c.optional_boolean("stream_dense_ffn").value_or(false)) {
    if (!have_cfg || row.shape.is_moe()) c.at("stream_dense_ffn").fail("applies to dense models with a full shape only");
    row.shape = streamed_dense(row.shape, cfg);
  }
  if (!row.shape.is_moe() && sc.io != IoMode::resident)
    c.at("io").fail("a model without experts (or streamed FFN) runs resident");
  return row;
}

}  // namespace

PublishedFile load_published_file(const std::filesystem::path& path, const std::filesystem::path& hardware_dir_in) {
  const std::filesystem::path hw_dir = hardware_dir_in.empty() ? hardware_dir() : hardware_dir_in;
  const auto ids = hardware_ids(hw_dir);
  const std::set<std::string> hw_ids(ids.begin(), ids.end());
  const JsonNode root = JsonNode::load(path);
  root.expect_object();
  root.allow_only({"$schema", "name", "description", "engines", "rows"});
  PublishedFile f;
  f.file = path.string();
  f.name = root.string("name");
  f.description = root.optional_string("description").value_or("");
  if (root.has("engines")) {
    const JsonNode engines = root.at("engines");
    for (const auto& key : engines.keys()) {
      const JsonNode e = engines.at(key);
      e.allow_only({"layer_overhead_us", "note"});
      const JsonNode o = e.at("layer_overhead_us");
      o.allow_only({"value", "source"});
      EngineConstants c;
      c.layer_overhead_us.value = o.at("value").nonnegative_number();
      c.layer_overhead_us.source = o.string("source");
      if (c.layer_overhead_us.source.empty()) o.at("source").fail("empty source: every value needs one");
      f.engines[key] = c;
    }
  }
  const JsonNode rows = root.at("rows");
  if (rows.size() == 0) rows.fail("expected at least one row");
  std::set<std::string> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    PublishedRow row = read_row(rows.at(i), hw_dir, hw_ids, f.engines);
    if (!seen.insert(row.id).second) rows.at(i).at("id").fail("duplicate row id '" + row.id + "'");
    f.rows.push_back(std::move(row));
  }
  return f;
}

}  // namespace moelab::perfmodel
