// mcp: the command line of the MCP broker.
//   mcp topic create|list|describe|delete, mcp pub, mcp sub, mcp group list|describe
//                                                             (talk to a broker: --broker HOST:PORT)
//   mcp log dump|verify                                       (read segment files offline)
// Exit codes: 0 fine, 1 the broker refused or a problem was found, 2 bad usage.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "tools/mcp/broker_commands.h"
#include "tools/mcp/group_commands.h"
#include "tools/mcp/log_commands.h"

int main(int argc, char** argv) {
  using namespace mcp::cli;
  CLI::App app{"mcp: command line of the MCP broker"};
  app.require_subcommand(1);
  std::string broker = "127.0.0.1:9092";
  auto broker_flag = [&broker](CLI::App* cmd) {
    cmd->add_option("--broker", broker, "HOST:PORT of the broker")->capture_default_str();
  };

  auto* topic = app.add_subcommand("topic", "create, list, describe and delete topics");
  topic->require_subcommand(1);
  topic_create_args create;
  auto* tc = topic->add_subcommand("create", "create a topic");
  tc->add_option("NAME", create.name, "topic name: 1..249 of A-Z a-z 0-9 . _ -")->required();
  tc->add_option("--partitions", create.partitions, "partitions")->capture_default_str()->check(CLI::Range(1u, 10000u));
  tc->add_option("--durability", create.durability, "sync | none | interval:MS (default: the broker's)");
  tc->add_option("--retention-bytes", create.retention_bytes, "per partition; -1 unlimited")->capture_default_str();
  tc->add_option("--retention-ms", create.retention_ms, "-1 unlimited")->capture_default_str();
  tc->add_option("--segment-bytes", create.segment_bytes, "roll a segment at this size, 4096..1073741824 (0: broker default, 256 MiB)")
      ->capture_default_str();
  tc->add_option("--segment-ms", create.segment_ms, "roll a segment older than this, >= 1000 (0: broker default, 7 days)")
      ->capture_default_str();
  broker_flag(tc);
  auto* tl = topic->add_subcommand("list", "list topics");
  broker_flag(tl);
  std::string name;
  auto* td = topic->add_subcommand("describe", "partitions, owning shard and port, offsets, bytes");
  td->add_option("NAME", name)->required();
  broker_flag(td);
  auto* tx = topic->add_subcommand("delete", "delete a topic and its data");
  tx->add_option("NAME", name)->required();
  broker_flag(tx);

  pub_args pa;
  std::uint32_t pub_partition = 0;
  auto* pc = app.add_subcommand("pub", "publish each line of stdin as one message (or --file as one)");
  pc->add_option("TOPIC", pa.topic)->required();
  auto* key_opt = pc->add_option("--key", "message key (also chooses the partition)");
  auto* ppart = pc->add_option("--partition", pub_partition, "partition (default: by key hash, else round robin)");
  pc->add_option("--file", pa.file, "publish this file as one message");
  pc->add_flag("--acks", pa.acks, "print PARTITION:OFFSET of each message once acknowledged, in input order");
  broker_flag(pc);

  sub_args sa;
  std::uint32_t sub_partition = 0;
  auto* sc = app.add_subcommand("sub", "print messages of a topic");
  sc->add_option("TOPIC", sa.topic)->required();
  auto* spart = sc->add_option("--partition", sub_partition, "only this partition (default: all)");
  sc->add_option("--from", sa.from, "earliest | latest | OFFSET | @TIMESTAMP_MS")->capture_default_str();
  sc->add_option("--count", sa.count, "exit after this many messages (0: no limit)")->capture_default_str();
  sc->add_option("--timeout-ms", sa.timeout_ms, "exit after this long with no new message")->capture_default_str();
  sc->add_option("--format", sa.format, "value | json")->check(CLI::IsMember({"value", "json"}))->capture_default_str();
  sc->add_option("--group", sa.group, "join this consumer group: each record goes to one member, acked after printing");
  broker_flag(sc);

  auto* grp = app.add_subcommand("group", "consumer groups: members, positions, leases, lag");
  grp->require_subcommand(1);
  auto* gl = grp->add_subcommand("list", "every group: topic, members, lag, dead-lettered records");
  broker_flag(gl);
  std::string group_name;
  auto* gd = grp->add_subcommand("describe", "members with credit and leases; per partition: position, lag, redeliveries");
  gd->add_option("GROUP", group_name)->required();
  broker_flag(gd);

  auto* log = app.add_subcommand("log", "read segment files offline (read-only)");
  log->require_subcommand(1);
  std::string dir;
  std::uint64_t limit = 0;
  auto* ld = log->add_subcommand("dump", "print records: offset, timestamp, key, value preview, headers");
  ld->add_option("DIR", dir, "a partition directory, or a directory holding some")->required();
  ld->add_option("--limit", limit, "records per partition (0: all)");
  auto* lv = log->add_subcommand("verify", "check every segment and index; exit 1 at the first problem");
  lv->add_option("DIR", dir, "a partition directory, or a directory holding some")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (ld->parsed()) return log_dump(dir, limit);
  if (lv->parsed()) return log_verify(dir);

  broker_address addr;
  if (!parse_broker(broker, addr)) {
    std::fprintf(stderr, "mcp: --broker '%s' is not HOST:PORT\n", broker.c_str());
    return 2;
  }
  if (tc->parsed()) return topic_create(addr, create);
  if (tl->parsed()) return topic_list(addr);
  if (td->parsed()) return topic_describe(addr, name);
  if (tx->parsed()) return topic_delete(addr, name);
  if (gl->parsed()) return group_list(addr);
  if (gd->parsed()) return group_describe(addr, group_name);
  if (pc->parsed()) {
    if (key_opt->count() > 0) pa.key = key_opt->as<std::string>();
    if (ppart->count() > 0) pa.partition = pub_partition;
    return pub(addr, pa);
  }
  if (spart->count() > 0) sa.partition = sub_partition;
  return sub(addr, sa);
}
