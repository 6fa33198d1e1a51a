#include "io/records.h"

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/array.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <boost/serialization/version.hpp>

#include <cstring>
#include <sstream>

#include "common/error.h"

// Each record's archive layout has a class version: a field added later is read only when the
// archive's version says it is there, so old bytes stay readable.
BOOST_CLASS_VERSION(alignpro::StepMetrics, 1)
BOOST_CLASS_VERSION(alignpro::TrainingSample, 1)
BOOST_CLASS_VERSION(alignpro::PhaseTimings, 1)
BOOST_CLASS_VERSION(alignpro::Estimate, 1)
BOOST_CLASS_VERSION(alignpro::EvalSummary, 1)
BOOST_CLASS_VERSION(alignpro::EvalSample, 1)
BOOST_CLASS_VERSION(alignpro::PoolState, 1)
BOOST_CLASS_VERSION(alignpro::RankRecords, 1)

namespace boost::serialization {

template <class Archive>
void serialize(Archive& ar, alignpro::StepMetrics& m, const unsigned int /*version*/) {
  ar& m.step& m.epoch& m.units& m.samples& m.reward_mean& m.reward_std& m.kl_mean& m.loss& m
      .grad_norm& m.learning_rate& m.tokens& m.tokens_per_s& m.step_s& m.elapsed_s& m.eta_s& m
      .phase_share;
}

template <class Archive>
void serialize(Archive& ar, alignpro::TrainingSample& s, const unsigned int /*version*/) {
  ar& s.step& s.prompt_index& s.candidate& s.sample& s.rank& s.seed& s.rewrite_stream& s
      .response_stream& s.prompt& s.rewrite& s.response& s.reward& s.advantage& s
      .logprob_prompter& s.logprob_reference& s.kl;
}

template <class Archive>
void serialize(Archive& ar, alignpro::PhaseTimings& t, const unsigned int /*version*/) {
  ar& t.step& t.rank& t.seconds;
}

template <class Archive>
void serialize(Archive& ar, alignpro::Estimate& e, const unsigned int /*version*/) {
  ar& e.value& e.ci_low& e.ci_high;
}

template <class Archive>
void serialize(Archive& ar, alignpro::EvalSummary& s, const unsigned int /*version*/) {
  ar& s.eval_index& s.step& s.condition& s.decoding& s.n& s.confidence& s.mean& s.std& s.win_rate& s
      .gain;
}

template <class Archive>
void serialize(Archive& ar, alignpro::EvalSample& s, const unsigned int /*version*/) {
  ar& s.eval_index& s.step& s.condition& s.decoding& s.prompt_index& s.prompt& s.rewrite& s
      .response& s.reward;
}

template <class Archive>
void serialize(Archive& ar, alignpro::PoolState& p, const unsigned int /*version*/) {
  ar& p.step& p.trained& p.rho_star& p.total_variation& p.kl_rho_star_reference& p
      .kl_trained_reference;
}

template <class Archive>
void serialize(Archive& ar, alignpro::RankRecords& r, const unsigned int /*version*/) {
  ar& r.step& r.rank& r.samples& r.eval_samples& r.timings;
}

}  // namespace boost::serialization

namespace alignpro {

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::kPrompterGeneration:
      return "prompter_generation";
    case Phase::kTargetGeneration:
      return "target_generation";
    case Phase::kReward:
      return "reward";
    case Phase::kBackward:
      return "backward";
    case Phase::kCommunication:
      return "communication";
    case Phase::kWaiting:
      return "waiting";
  }
  return "unknown";
}

namespace {

// The envelope around an archive: magic, record kind, payload size and checksum, so that bytes
// from another sender, another record kind or a cut message are recognised before Boost reads a
// single length field from them.
constexpr char kMagic[4] = {'A', 'P', 'R', 'C'};
constexpr size_t kEnvelopeSize = 4 + 4 + 8 + 8;
constexpr uint32_t kVectorOf = 0x100;

template <class Record>
struct Kind;
template <>
struct Kind<StepMetrics> {
  static constexpr uint32_t value = 1;
  static constexpr const char* name = "StepMetrics";
};
template <>
struct Kind<TrainingSample> {
  static constexpr uint32_t value = 2;
  static constexpr const char* name = "TrainingSample";
};
template <>
struct Kind<PhaseTimings> {
  static constexpr uint32_t value = 3;
  static constexpr const char* name = "PhaseTimings";
};
template <>
struct Kind<EvalSummary> {
  static constexpr uint32_t value = 4;
  static constexpr const char* name = "EvalSummary";
};
template <>
struct Kind<EvalSample> {
  static constexpr uint32_t value = 5;
  static constexpr const char* name = "EvalSample";
};
template <>
struct Kind<PoolState> {
  static constexpr uint32_t value = 6;
  static constexpr const char* name = "PoolState";
};
template <>
struct Kind<RankRecords> {
  static constexpr uint32_t value = 7;
  static constexpr const char* name = "RankRecords";
};
template <class Record>
struct Kind<std::vector<Record>> {
  static constexpr uint32_t value = kVectorOf | Kind<Record>::value;
  static constexpr const char* name = Kind<Record>::name;
};

// FNV-1a, 64 bits: detects corruption; not meant to resist deliberate tampering.
uint64_t checksum(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

template <class T>
void put(std::string& out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  out.append(raw, sizeof(T));
}

template <class T>
T get(std::string_view bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

std::string kind_name(uint32_t kind) {
  static const char* const kNames[] = {
      "?",           "StepMetrics", "TrainingSample", "PhaseTimings",
      "EvalSummary", "EvalSample",  "PoolState",      "RankRecords"};
  const uint32_t base = kind & ~kVectorOf;
  const std::string name = base < 8 && base > 0 ? kNames[base] : "kind " + std::to_string(kind);
  return (kind & kVectorOf) ? "a list of " + name : name;
}

}  // namespace

template <class Record>
std::string to_bytes(const Record& record) {
  std::ostringstream stream(std::ios::binary);
  {
    boost::archive::binary_oarchive archive(stream);
    archive << record;
  }
  const std::string payload = stream.str();
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, Kind<Record>::value);
  put<uint64_t>(out, payload.size());
  put<uint64_t>(out, checksum(payload));
  out += payload;
  return out;
}

template <class Record>
Record from_bytes(std::string_view bytes) {
  const std::string what = std::string("record bytes (expected ") +
                           ((Kind<Record>::value & kVectorOf) ? "a list of " : "") +
                           Kind<Record>::name + ", " + std::to_string(bytes.size()) + " bytes)";
  if (bytes.size() < kEnvelopeSize || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    throw RuntimeError(what + ": no record envelope at byte 0");
  }
  const auto kind = get<uint32_t>(bytes, 4);
  const auto size = get<uint64_t>(bytes, 8);
  const auto sum = get<uint64_t>(bytes, 16);
  if (kind != Kind<Record>::value) {
    throw RuntimeError(what + ": they hold " + kind_name(kind));
  }
  if (size != bytes.size() - kEnvelopeSize) {
    throw RuntimeError(what + ": the envelope announces " + std::to_string(size) +
                       " payload bytes, " + std::to_string(bytes.size() - kEnvelopeSize) +
                       " arrived");
  }
  const std::string_view payload = bytes.substr(kEnvelopeSize);
  if (checksum(payload) != sum) throw RuntimeError(what + ": checksum mismatch (corrupted)");
  Record record{};
  try {
    std::istringstream stream(std::string(payload), std::ios::binary);
    boost::archive::binary_iarchive archive(stream);
    archive >> record;
  } catch (const std::exception& e) {
    throw RuntimeError(what + ": cannot be decoded: " + e.what());
  }
  return record;
}

#define ALIGNPRO_RECORD_BYTES(Record)                                             \
  template std::string to_bytes<Record>(const Record&);                           \
  template Record from_bytes<Record>(std::string_view);                           \
  template std::string to_bytes<std::vector<Record>>(const std::vector<Record>&); \
  template std::vector<Record> from_bytes<std::vector<Record>>(std::string_view);

ALIGNPRO_RECORD_BYTES(StepMetrics)
ALIGNPRO_RECORD_BYTES(TrainingSample)
ALIGNPRO_RECORD_BYTES(PhaseTimings)
ALIGNPRO_RECORD_BYTES(EvalSummary)
ALIGNPRO_RECORD_BYTES(EvalSample)
ALIGNPRO_RECORD_BYTES(PoolState)
ALIGNPRO_RECORD_BYTES(RankRecords)

#undef ALIGNPRO_RECORD_BYTES

}  // namespace alignpro
