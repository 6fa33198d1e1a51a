// Reading a job: TOML text -> defaults, file values, --set overrides -> checks -> Job.
// Every problem is collected before anything is thrown, so a user fixes a job in one pass.
#include <toml++/toml.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "common/job.h"

namespace alignpro {

namespace fs = std::filesystem;

namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

std::string render_double(double x) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), x);
  std::string text(buffer, end);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";  // stay a TOML float
  return text;
}

// A value as TOML would write it.
std::string render(const JobValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return render_double(d); }
    std::string operator()(const std::string& s) const { return quote(s); }
    std::string operator()(const std::vector<std::string>& list) const {
      std::string out = "[";
      for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + quote(list[i]);
      return out + "]";
    }
    std::string operator()(const std::vector<double>& list) const {
      std::string out = "[";
      for (size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + render_double(list[i]);
      return out + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

// A TOML node as the user wrote it, for messages.
std::string render_node(const toml::node& node) {
  std::ostringstream out;
  if (auto s = node.as_string()) return quote(s->get());
  node.visit([&](auto&& n) { out << n; });
  return out.str();
}

const KeySpec* find_key(const std::string& section, const std::string& key) {
  for (const auto& spec : job_schema()) {
    if (spec.section == section && spec.key == key) return &spec;
  }
  return nullptr;
}

std::string nearest(const std::string& wanted, const std::vector<std::string>& names) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const auto& name : names) {
    const size_t d = edit_distance(wanted, name);
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  // Only suggest what is plausibly a typo: within half of the name's length.
  if (best_distance > std::max<size_t>(2, wanted.size() / 2)) return "";
  return best;
}

// Converts a TOML node to the key's type; nullopt when the type is wrong.
std::optional<JobValue> convert(const toml::node& node, const KeySpec& spec) {
  switch (spec.type) {
    case KeyType::kBool:
      if (auto b = node.as_boolean()) return JobValue(b->get());
      return std::nullopt;
    case KeyType::kInt:
      if (auto i = node.as_integer()) return JobValue(static_cast<int64_t>(i->get()));
      return std::nullopt;
    case KeyType::kReal:
      if (auto d = node.as_floating_point()) return JobValue(d->get());
      if (auto i = node.as_integer()) return JobValue(static_cast<double>(i->get()));
      return std::nullopt;
    case KeyType::kString:
    case KeyType::kChoice:
    case KeyType::kPath:
      if (auto s = node.as_string()) return JobValue(s->get());
      return std::nullopt;
    case KeyType::kStringList: {
      auto array = node.as_array();
      if (!array) return std::nullopt;
      std::vector<std::string> list;
      for (const auto& item : *array) {
        auto s = item.as_string();
        if (!s) return std::nullopt;
        list.push_back(s->get());
      }
      return JobValue(list);
    }
    case KeyType::kRealList: {
      auto array = node.as_array();
      if (!array) return std::nullopt;
      std::vector<double> list;
      for (const auto& item : *array) {
        if (auto d = item.as_floating_point()) {
          list.push_back(d->get());
        } else if (auto i = item.as_integer()) {
          list.push_back(static_cast<double>(i->get()));
        } else {
          return std::nullopt;
        }
      }
      return JobValue(list);
    }
  }
  return std::nullopt;
}

// Whether a value of the right type is within the key's range or choices.
bool in_range(const JobValue& value, const KeySpec& spec) {
  if (spec.type == KeyType::kChoice) {
    const auto& s = std::get<std::string>(value);
    return std::find(spec.choices.begin(), spec.choices.end(), s) != spec.choices.end();
  }
  if (spec.min == spec.max) return true;
  double x = 0;
  if (spec.type == KeyType::kInt)
    x = static_cast<double>(std::get<int64_t>(value));
  else if (spec.type == KeyType::kReal)
    x = std::get<double>(value);
  else
    return true;
  if (!std::isfinite(x)) return false;
  return (spec.min_open ? x > spec.min : x >= spec.min) && x <= spec.max;
}

class Reader {
 public:
  Reader(const std::string& path, const JobReadOptions& options) : path_(path), options_(options) {}

  Job read(const std::string& text) {
    job_.path = path_;
    job_.text = text;
    job_.overrides = options_.overrides;
    for (const auto& spec : job_schema()) spec.store(job_, spec.default_value);

    toml::table table;
    try {
      table = toml::parse(text, path_);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      throw JobError({path_ + ":" + std::to_string(where.line) + ":" +
                      std::to_string(where.column) +
                      ": TOML syntax error: " + std::string(e.description())});
    }
    read_table(table);
    for (const auto& assignment : options_.overrides) read_override(assignment);
    resolve_paths();
    check_consistency();
    if (!problems_.empty()) throw JobError(problems_);
    return job_;
  }

 private:
  std::string at(const toml::node& node) const {
    return path_ + ":" + std::to_string(node.source().begin.line);
  }

  void problem(const std::string& where, const std::string& key, const std::string& what) {
    problems_.push_back(where + ": " + key + ": " + what);
  }

  // Stores a converted value or records why it cannot be stored.
  void assign(const KeySpec& spec, const toml::node& node, const std::string& where) {
    auto value = convert(node, spec);
    if (!value) {
      problem(where, spec.full_name(),
              "found " + render_node(node) + "; allowed: " + spec.allowed());
      return;
    }
    if (!in_range(*value, spec)) {
      problem(where, spec.full_name(), "found " + render(*value) + "; allowed: " + spec.allowed());
      return;
    }
    spec.store(job_, *value);
    origin_[spec.full_name()] = where;
  }

  void read_table(const toml::table& table) {
    std::vector<std::string> full_names;
    for (const auto& spec : job_schema()) full_names.push_back(spec.full_name());
    for (const auto& [section_key, node] : table) {
      const std::string section(section_key.str());
      const auto& sections = job_sections();
      if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
        const std::string guess = nearest(section, sections);
        problem(at(node), "[" + section + "]",
                "unknown section" + (guess.empty() ? "" : "; did you mean [" + guess + "]?") +
                    "; allowed: " + join(sections));
        continue;
      }
      const auto* keys = node.as_table();
      if (!keys) {
        problem(at(node), section, "found a value; allowed: a section [" + section + "]");
        continue;
      }
      for (const auto& [key_name, value] : *keys) {
        const std::string key(key_name.str());
        const KeySpec* spec = find_key(section, key);
        if (!spec) {
          const std::string guess = nearest(section + "." + key, full_names);
          problem(at(value), section + "." + key,
                  "unknown key" + (guess.empty() ? "" : "; did you mean " + guess + "?"));
          continue;
        }
        assign(*spec, value, at(value));
      }
    }
  }

  void read_override(const std::string& assignment) {
    const std::string where = "--set " + assignment;
    const auto equals = assignment.find('=');
    const auto dot = assignment.find('.');
    if (equals == std::string::npos || dot == std::string::npos || dot > equals) {
      problems_.push_back(where + ": expected section.key=value");
      return;
    }
    const std::string section = assignment.substr(0, dot);
    const std::string key = assignment.substr(dot + 1, equals - dot - 1);
    const std::string value_text = assignment.substr(equals + 1);
    const KeySpec* spec = find_key(section, key);
    if (!spec) {
      std::vector<std::string> full_names;
      for (const auto& s : job_schema()) full_names.push_back(s.full_name());
      const std::string guess = nearest(section + "." + key, full_names);
      problem(where, section + "." + key,
              "unknown key" + (guess.empty() ? "" : "; did you mean " + guess + "?"));
      return;
    }
    // The value is TOML; a bare word for a string-typed key is taken as that string.
    toml::table parsed;
    bool ok = true;
    try {
      parsed = toml::parse("v = " + value_text);
    } catch (const toml::parse_error&) {
      ok = false;
    }
    const bool stringy = spec->type == KeyType::kString || spec->type == KeyType::kChoice ||
                         spec->type == KeyType::kPath;
    if ((!ok || !parsed["v"].is_string()) && stringy) {
      parsed = toml::table{{"v", value_text}};
      ok = true;
    }
    if (!ok) {
      problem(where, spec->full_name(), "found " + value_text + "; allowed: " + spec->allowed());
      return;
    }
    assign(*spec, *parsed.get("v"), where);
    if (spec->type == KeyType::kPath) from_command_line_.push_back(spec->full_name());
  }

  std::string origin(const std::string& key) const {
    auto it = origin_.find(key);
    return it == origin_.end() ? path_ : it->second;
  }

  // Relative paths resolve against the job file's folder, or the working directory for --set.
  void resolve_paths() {
    const fs::path job_dir = fs::absolute(fs::path(path_)).parent_path();
    if (job_.run.name.empty()) job_.run.name = fs::path(path_).stem().string();
    if (job_.run.output.empty()) job_.run.output = "runs/" + job_.run.name + ".h5";
    for (const auto& spec : job_schema()) {
      if (spec.type != KeyType::kPath) continue;
      auto value = std::get<std::string>(spec.load(job_));
      if (value.empty()) continue;
      const bool cli = std::find(from_command_line_.begin(), from_command_line_.end(),
                                 spec.full_name()) != from_command_line_.end();
      fs::path resolved = fs::path(value);
      if (resolved.is_relative()) resolved = (cli ? fs::current_path() : job_dir) / resolved;
      resolved = resolved.lexically_normal();
      spec.store(job_, JobValue(resolved.string()));
      if (options_.check_files) check_path(spec, value, resolved);
    }
  }

  void check_path(const KeySpec& spec, const std::string& given, const fs::path& resolved) {
    std::error_code ec;
    const std::string found = "found " + quote(given) +
                              (given == resolved.string() ? "" : " (" + resolved.string() + ")");
    switch (spec.path_kind) {
      case PathKind::kFile:
        if (!fs::is_regular_file(resolved, ec)) {
          problem(origin(spec.full_name()), spec.full_name(),
                  found + "; allowed: an existing file, and there is " +
                      (fs::exists(resolved, ec) ? "a folder there" : "no such file"));
        }
        break;
      case PathKind::kDir:
        if (!fs::is_directory(resolved, ec)) {
          problem(origin(spec.full_name()), spec.full_name(),
                  found + "; allowed: an existing model folder, and there is " +
                      (fs::exists(resolved, ec) ? "a file there" : "no such folder"));
        }
        break;
      case PathKind::kFileOrDir:
        if (!fs::exists(resolved, ec)) {
          problem(origin(spec.full_name()), spec.full_name(), found + "; no such file or folder");
        }
        break;
      case PathKind::kOutput: {
        if (fs::is_directory(resolved, ec)) {
          problem(origin(spec.full_name()), spec.full_name(),
                  found + "; allowed: a file name, and this is a folder");
          break;
        }
        fs::path existing = resolved.parent_path();
        while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
        if (existing.empty() || !fs::is_directory(existing, ec) ||
            access(existing.c_str(), W_OK) != 0) {
          problem(origin(spec.full_name()), spec.full_name(),
                  found + "; allowed: a writable location, and " +
                      (existing.empty() ? std::string("no parent folder exists")
                                        : existing.string() + " is not a writable folder"));
        }
        break;
      }
      case PathKind::kNone:
        break;
    }
  }

  void require(bool ok, const std::string& key, const std::string& why) {
    if (!ok) problem(origin(key), key, why);
  }

  void check_consistency() {
    const auto& p = job_.prompter;
    const auto& r = job_.reward;
    const bool align_pro = job_.run.mode == "align-pro";
    require(!job_.data.train.empty(), "data.train", "missing; required: a prompt file");
    require(!job_.target.model.empty(), "target.model", "missing; required: a model folder");
    if (align_pro && p.kind == "lm") {
      require(!p.model.empty(), "prompter.model", "missing; required when prompter.kind = \"lm\"");
    }
    if (align_pro && p.kind == "pool") {
      require(!p.pool.empty(), "prompter.pool",
              "found []; required when prompter.kind = \"pool\": at least one template");
      for (const auto& t : p.pool) {
        require(t.find("{prompt}") != std::string::npos, "prompter.pool",
                "found " + quote(t) + "; allowed: templates that contain {prompt}");
      }
      if (!p.pool_reference.empty()) {
        double sum = 0;
        bool positive = true;
        for (double q : p.pool_reference) {
          sum += q;
          positive = positive && q > 0;
        }
        require(p.pool_reference.size() == p.pool.size(), "prompter.pool_reference",
                "found " + std::to_string(p.pool_reference.size()) + " probabilities for " +
                    std::to_string(p.pool.size()) + " templates; allowed: one per template");
        require(positive && std::abs(sum - 1.0) < 1e-6, "prompter.pool_reference",
                "found " + render(p.pool_reference) +
                    "; allowed: positive probabilities that sum to 1");
      }
    }
    require(p.template_.find("{prompt}") != std::string::npos, "prompter.template",
            "found " + quote(p.template_) + "; allowed: a template that contains {prompt}");
    require(
        job_.target.template_.find("{prompt}") != std::string::npos, "target.template",
        "found " + quote(job_.target.template_) + "; allowed: a template that contains {prompt}");
    const bool uses_model =
        r.kind == "model" ||
        (r.kind == "sum" && std::find(r.terms.begin(), r.terms.end(), "model") != r.terms.end());
    if (uses_model) {
      require(!r.model.empty(), "reward.model", "missing; required when the reward uses a model");
      require(r.template_.find("{prompt}") != std::string::npos &&
                  r.template_.find("{response}") != std::string::npos,
              "reward.template",
              "found " + quote(r.template_) +
                  "; allowed: a template that contains {prompt} and {response}");
    }
    auto check_rule = [&](const std::string& kind) {
      if (kind == "keywords") {
        require(!r.keywords.empty(), "reward.keywords",
                "found []; required for the keywords reward: at least one word");
      } else if (kind == "length") {
        require(r.length_min <= r.length_max, "reward.length_min",
                "found " + std::to_string(r.length_min) + " above reward.length_max = " +
                    std::to_string(r.length_max) + "; allowed: length_min <= length_max");
      } else if (kind == "regex") {
        require(!r.regex.empty(), "reward.regex", "found \"\"; required for the regex reward");
      }
    };
    if (r.kind == "sum") {
      require(!r.terms.empty(), "reward.terms", "found []; required for kind = \"sum\"");
      require(r.terms.size() == r.weights.size(), "reward.weights",
              "found " + std::to_string(r.weights.size()) + " weights for " +
                  std::to_string(r.terms.size()) + " terms; allowed: one weight per term");
      for (const auto& term : r.terms) {
        const bool known =
            term == "model" || term == "keywords" || term == "length" || term == "regex";
        require(known, "reward.terms",
                "found " + quote(term) + "; allowed: model, keywords, length, regex");
        check_rule(term);
      }
    } else {
      check_rule(r.kind);
    }
    for (const auto& d : job_.eval.decoding) {
      require(d == "greedy" || d == "sampled", "eval.decoding",
              "found " + quote(d) + "; allowed: greedy, sampled");
    }
    require(!job_.eval.decoding.empty(), "eval.decoding", "found []; allowed: greedy, sampled");
    require(job_.optim.warmup_steps <= job_.run.steps, "optim.warmup_steps",
            "found " + std::to_string(job_.optim.warmup_steps) +
                ", more than run.steps = " + std::to_string(job_.run.steps));
    require(
        job_.runtime.watchdog_warn < job_.runtime.watchdog_abort, "runtime.watchdog_warn",
        "found " + render_double(job_.runtime.watchdog_warn) +
            ", not below runtime.watchdog_abort = " + render_double(job_.runtime.watchdog_abort));
    require(job_.optim.minibatches <= job_.units_per_step(), "optim.minibatches",
            "found " + std::to_string(job_.optim.minibatches) + ", more than the " +
                std::to_string(job_.units_per_step()) + " work units of a step");
    if (job_.units_per_step() < options_.world_size) {
      problem(origin("optim.batch_prompts"), "optim.batch_prompts",
              "found " + std::to_string(job_.optim.batch_prompts) + " prompts x " +
                  std::to_string(job_.prompter.candidates) +
                  " candidates = " + std::to_string(job_.units_per_step()) +
                  " work units per step, fewer than the " + std::to_string(options_.world_size) +
                  " ranks; allowed: at least one unit "
                  "per rank");
    }
  }

  static std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
    return out;
  }

  std::string path_;
  JobReadOptions options_;
  Job job_;
  std::vector<std::string> problems_;
  std::map<std::string, std::string> origin_;  // key -> "file:line" or "--set ..."
  std::vector<std::string> from_command_line_;
};

}  // namespace

JobError::JobError(std::vector<std::string> problems)
    : InputError([&] {
        std::string text;
        for (size_t i = 0; i < problems.size(); ++i) text += (i ? "\n" : "") + problems[i];
        return text;
      }()),
      problems_(std::move(problems)) {}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

Job parse_job(const std::string& text, const std::string& path, const JobReadOptions& options) {
  return Reader(path, options).read(text);
}

Job read_job(const std::string& path, const JobReadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw JobError({path + ": cannot open the job file (" + std::strerror(errno) + ")"});
  std::ostringstream text;
  text << in.rdbuf();
  return parse_job(text.str(), path, options);
}

namespace {

// One `section.key = value` line per key in schema order, but those in `left_out`.
std::string canonical_lines(const Job& job, const std::set<std::string>& left_out) {
  std::string out;
  for (const auto& spec : job_schema()) {
    if (left_out.count(spec.full_name()) == 0) {
      out += spec.full_name() + " = " + render(spec.load(job)) + "\n";
    }
  }
  return out;
}

// FNV-1a, 64 bits: stable across compilers and runs, unlike std::hash.
uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

std::string Job::canonical() const {
  return canonical_lines(*this, {});
}

uint64_t Job::hash() const {
  return fnv1a(canonical());
}

uint64_t Job::results_hash() const {
  // Keys that say how a run is operated, not what it computes.
  static const std::set<std::string> kOperational = {
      "run.resume",     "run.log_every",   "run.checkpoint_every",  "run.keep_checkpoints",
      "runtime.device", "runtime.threads", "runtime.watchdog_warn", "runtime.watchdog_abort"};
  return fnv1a(canonical_lines(*this, kOperational));
}

std::string Job::to_toml() const {
  std::string out;
  std::string section;
  for (const auto& spec : job_schema()) {
    if (spec.section != section) {
      section = spec.section;
      out += (out.empty() ? "[" : "\n[") + section + "]\n";
    }
    out += spec.key + " = " + render(spec.load(*this)) + "\n";
  }
  return out;
}

std::string job_reference_markdown() {
  std::string out;
  std::string section;
  auto cell = [](std::string s) {
    std::string escaped;
    for (char c : s) escaped += (c == '|') ? std::string("\\|") : std::string(1, c);
    return escaped;
  };
  for (const auto& spec : job_schema()) {
    if (spec.section != section) {
      section = spec.section;
      out += "\n#### [" + section + "]\n\n| key | default | unit | allowed | meaning |\n";
      out += "|---|---|---|---|---|\n";
    }
    out += "| `" + spec.key + "` | `" + cell(render(spec.default_value)) + "` | " +
           cell(spec.unit) + " | " + cell(spec.allowed()) + " | " + cell(spec.doc) + " |\n";
  }
  return out;
}

}  // namespace alignpro
