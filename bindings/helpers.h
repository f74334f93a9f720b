/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of ip_vs_mh_rs: what Rust cannot call directly because the
 * kernel provides it as a static inline function or a macro.
 */
#ifndef IP_VS_MH_RS_HELPERS_H
#define IP_VS_MH_RS_HELPERS_H

#include <linux/types.h>
#include <linux/siphash.h>

struct ip_vs_service;
struct ip_vs_dest;
struct ip_vs_iphdr;
struct sk_buff;

/* One real server of a service, as the table builder needs it. */
struct mh_rs_dest_info {
	struct ip_vs_dest *dest;
	union nf_inet_addr addr;
	__be16 port;
	u16 af;
	int weight;
};

/* What a packet hashes on: the client's address and port. */
struct mh_rs_flow {
	union nf_inet_addr addr;
	__be16 port;
};

/* Room for a service's name, e.g. "TCP [ffff:...:ffff]:65535". */
#define MH_RS_SVC_NAME_LEN 64

/* Per-CPU packet-path counters of one service. */
struct mh_rs_counters {
	u64 decisions;
	u64 fallbacks;
	u64 refusals;
};

enum mh_rs_counter {
	MH_RS_DECISION,
	MH_RS_FALLBACK,
	MH_RS_REFUSAL,
};

struct seq_file;

/*
 * Scheduler registration, with the per-namespace /proc/net/ip_vs_mh file;
 * the callbacks are implemented in Rust.
 */
int mh_rs_register(void);
void mh_rs_unregister(void);
/* Writes one service's records; implemented in Rust. */
void mh_rs_state_show(const void *state, struct seq_file *seq);

int mh_rs_init_service(struct ip_vs_service *svc);
void mh_rs_done_service(struct ip_vs_service *svc);
int mh_rs_dest_changed(struct ip_vs_service *svc, struct ip_vs_dest *dest);
struct ip_vs_dest *mh_rs_schedule(struct ip_vs_service *svc,
				  const struct sk_buff *skb,
				  struct ip_vs_iphdr *iph);

unsigned int mh_rs_svc_dests(struct ip_vs_service *svc,
			     struct mh_rs_dest_info *out, unsigned int max);
void mh_rs_dest_hold(struct ip_vs_dest *dest);
void mh_rs_dest_put(struct ip_vs_dest *dest);
bool mh_rs_dest_available(const struct ip_vs_dest *dest);
void mh_rs_flow_of(const struct sk_buff *skb, const struct ip_vs_iphdr *iph,
		   struct mh_rs_flow *flow);
void mh_rs_svc_name(const struct ip_vs_service *svc, char *buf, size_t len);
u32 mh_rs_kernel_hsiphash_u32(u32 value, u64 key0, u64 key1);

int mh_rs_registry_add(struct ip_vs_service *svc, const void *state);
void mh_rs_registry_del(const void *state);
void mh_rs_seq_write(struct seq_file *seq, const char *buf, size_t len);
void mh_rs_format_addr(bool ipv6, const u8 *addr, u16 port, char *buf,
		       size_t len);
s64 mh_rs_boottime_seconds(void);

struct mh_rs_counters __percpu *mh_rs_counters_alloc(void);
void mh_rs_counters_free(struct mh_rs_counters __percpu *counters);
void mh_rs_counters_inc(struct mh_rs_counters __percpu *counters,
			enum mh_rs_counter which);
void mh_rs_counters_sum(struct mh_rs_counters __percpu *counters,
			struct mh_rs_counters *sum);
size_t mh_rs_counters_bytes(void);
size_t mh_rs_registry_entry_bytes(void);

#endif
