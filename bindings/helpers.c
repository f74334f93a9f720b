// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of ip_vs_mh_rs.
 *
 * The scheduler object itself lives here: IPVS needs a struct with a stable
 * address, an initialised list head and THIS_MODULE, and its callbacks are
 * the Rust functions declared in helpers.h. So does the per-namespace
 * /proc/net/ip_vs_mh file, whose records Rust writes. The other helpers wrap
 * static inline functions and macros of the IPVS and networking headers.
 */

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/fault-inject.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/seq_file_net.h>
#include <linux/skbuff.h>
#include <linux/siphash.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <net/ip_vs.h>
#include <net/net_namespace.h>

#include "helpers.h"

/*
 * IPVS enters the Rust callbacks that change tables or pick a server through
 * these C functions. Linux 7.3 builds Rust code without ftrace hooks, so this
 * is where the function tracer and profiler can see and time them (the
 * scheduling-cost benchmark does); it costs one direct call.
 */
static noinline int ip_vs_mh_rs_dest_changed(struct ip_vs_service *svc,
					     struct ip_vs_dest *dest)
{
	return mh_rs_dest_changed(svc, dest);
}

static noinline struct ip_vs_dest *
ip_vs_mh_rs_schedule(struct ip_vs_service *svc, const struct sk_buff *skb,
		     struct ip_vs_iphdr *iph)
{
	return mh_rs_schedule(svc, skb, iph);
}

static struct ip_vs_scheduler mh_rs_scheduler = {
	.name = "mh",
	.refcnt = ATOMIC_INIT(0),
	.module = THIS_MODULE,
	.n_list = LIST_HEAD_INIT(mh_rs_scheduler.n_list),
	.init_service = mh_rs_init_service,
	.done_service = mh_rs_done_service,
	.add_dest = ip_vs_mh_rs_dest_changed,
	.del_dest = ip_vs_mh_rs_dest_changed,
	.upd_dest = ip_vs_mh_rs_dest_changed,
	.schedule = ip_vs_mh_rs_schedule,
};

/*
 * The services that use this scheduler, with their namespace, so that each
 * namespace's /proc/net/ip_vs_mh lists its own. An entry is removed (under
 * the lock) before its state is retired, so a reader holding the lock only
 * sees live states.
 */
static DEFINE_MUTEX(mh_rs_registry_lock);
static LIST_HEAD(mh_rs_registry);

struct mh_rs_entry {
	struct list_head node;
	possible_net_t net;
	const void *state;
};

int mh_rs_registry_add(struct ip_vs_service *svc, const void *state)
{
	struct mh_rs_entry *e = kmalloc(sizeof(*e), GFP_KERNEL);

	if (!e)
		return -ENOMEM;
	write_pnet(&e->net, svc->ipvs->net);
	e->state = state;
	mutex_lock(&mh_rs_registry_lock);
	list_add_tail(&e->node, &mh_rs_registry);
	mutex_unlock(&mh_rs_registry_lock);
	return 0;
}

size_t mh_rs_registry_entry_bytes(void)
{
	return sizeof(struct mh_rs_entry);
}

void mh_rs_registry_del(const void *state)
{
	struct mh_rs_entry *e, *tmp;

	mutex_lock(&mh_rs_registry_lock);
	list_for_each_entry_safe(e, tmp, &mh_rs_registry, node) {
		if (e->state == state) {
			list_del(&e->node);
			kfree(e);
			break;
		}
	}
	mutex_unlock(&mh_rs_registry_lock);
}

static int mh_rs_proc_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);
	struct mh_rs_entry *e;

	seq_puts(seq, "# ip_vs_mh_rs 2\n");
	seq_puts(seq, "# S proto address size order rebuilds last_rebuild moved decisions fallbacks refusals bytes\n");
	seq_puts(seq, "# D address weight slots slot_share weight_share\n");
	mutex_lock(&mh_rs_registry_lock);
	list_for_each_entry(e, &mh_rs_registry, node) {
		if (net_eq(read_pnet(&e->net), net))
			mh_rs_state_show(e->state, seq);
	}
	mutex_unlock(&mh_rs_registry_lock);
	return 0;
}

static int __net_init mh_rs_net_init(struct net *net)
{
	if (!proc_create_net_single("ip_vs_mh", 0444, net->proc_net,
				    mh_rs_proc_show, NULL))
		return -ENOMEM;
	return 0;
}

static void __net_exit mh_rs_net_exit(struct net *net)
{
	remove_proc_entry("ip_vs_mh", net->proc_net);
}

static struct pernet_operations mh_rs_net_ops = {
	.init = mh_rs_net_init,
	.exit = mh_rs_net_exit,
};

/*
 * failslab and fail_page_alloc do not reach the per-CPU allocator. This fault
 * point lets /proc/<pid>/fail-nth fail the per-CPU counters too, like every
 * other allocation of the module (tests/reliability/faults.py). Without
 * CONFIG_FAULT_INJECTION it compiles to nothing.
 */
static DECLARE_FAULT_ATTR(mh_rs_fail_percpu);

int mh_rs_register(void)
{
	int ret;

#ifdef CONFIG_FAULT_INJECTION
	/* An injected failure is one log line, not a stack dump. */
	mh_rs_fail_percpu.verbose = 1;
#endif
	ret = register_pernet_subsys(&mh_rs_net_ops);
	if (ret < 0)
		return ret;
	ret = register_ip_vs_scheduler(&mh_rs_scheduler);
	if (ret < 0) {
		unregister_pernet_subsys(&mh_rs_net_ops);
		/* IPVS says EINVAL when a scheduler of the same name exists. */
		if (ret == -EINVAL)
			ret = -EEXIST;
	}
	return ret;
}

void mh_rs_unregister(void)
{
	unregister_ip_vs_scheduler(&mh_rs_scheduler);
	unregister_pernet_subsys(&mh_rs_net_ops);
}

void mh_rs_seq_write(struct seq_file *seq, const char *buf, size_t len)
{
	seq_write(seq, buf, len);
}

/* "192.0.2.1:80" or "[2001:db8::1]:80"; @addr is 4 or 16 bytes. */
void mh_rs_format_addr(bool ipv6, const u8 *addr, u16 port, char *buf,
		       size_t len)
{
	if (ipv6)
		snprintf(buf, len, "[%pI6c]:%u", addr, port);
	else
		snprintf(buf, len, "%pI4:%u", addr, port);
}

s64 mh_rs_boottime_seconds(void)
{
	return ktime_get_boottime_seconds();
}

struct mh_rs_counters __percpu *mh_rs_counters_alloc(void)
{
	if (should_fail(&mh_rs_fail_percpu, sizeof(struct mh_rs_counters)))
		return NULL;
	return alloc_percpu(struct mh_rs_counters);
}

/* What one service's counters take: a copy per possible CPU. */
size_t mh_rs_counters_bytes(void)
{
	return sizeof(struct mh_rs_counters) * num_possible_cpus();
}

/* Callable from RCU callbacks: free_percpu() may be used in atomic context. */
void mh_rs_counters_free(struct mh_rs_counters __percpu *counters)
{
	free_percpu(counters);
}

/* Packet path: no shared cache line is written. */
void mh_rs_counters_inc(struct mh_rs_counters __percpu *counters,
			enum mh_rs_counter which)
{
	switch (which) {
	case MH_RS_DECISION:
		this_cpu_inc(counters->decisions);
		break;
	case MH_RS_FALLBACK:
		this_cpu_inc(counters->fallbacks);
		break;
	case MH_RS_REFUSAL:
		this_cpu_inc(counters->refusals);
		break;
	}
}

void mh_rs_counters_sum(struct mh_rs_counters __percpu *counters,
			struct mh_rs_counters *sum)
{
	int cpu;

	memset(sum, 0, sizeof(*sum));
	for_each_possible_cpu(cpu) {
		const struct mh_rs_counters *c = per_cpu_ptr(counters, cpu);

		sum->decisions += READ_ONCE(c->decisions);
		sum->fallbacks += READ_ONCE(c->fallbacks);
		sum->refusals += READ_ONCE(c->refusals);
	}
}

/*
 * Copy the service's real servers, in IPVS list order (newest first), into
 * @out. Called with the IPVS configuration mutex held, so the list is stable.
 * Returns the number of servers, which may exceed @max (then only @max were
 * copied).
 */
unsigned int mh_rs_svc_dests(struct ip_vs_service *svc,
			     struct mh_rs_dest_info *out, unsigned int max)
{
	struct ip_vs_dest *dest;
	unsigned int n = 0;

	list_for_each_entry(dest, &svc->destinations, n_list) {
		if (n < max) {
			out[n].dest = dest;
			out[n].addr = dest->addr;
			out[n].port = dest->port;
			out[n].af = dest->af;
			out[n].weight = atomic_read(&dest->weight);
		}
		n++;
	}
	return n;
}

void mh_rs_dest_hold(struct ip_vs_dest *dest)
{
	ip_vs_dest_hold(dest);
}

void mh_rs_dest_put(struct ip_vs_dest *dest)
{
	ip_vs_dest_put(dest);
}

/* Same test as the C scheduler: a server is usable unless quiesced or overloaded. */
/*
 * A server takes new connections while it has a weight, is not overloaded and
 * is still in the service. A deleted server (IPVS clears its
 * IP_VS_DEST_CF_AVAILABLE as it unlinks it) can still be named by the serving
 * table if the rebuild after the delete failed, and IPVS would drop the
 * packets of a connection to it.
 */
bool mh_rs_dest_available(const struct ip_vs_dest *dest)
{
	return atomic_read(&dest->weight) > 0 &&
	       (READ_ONCE(dest->cflags) & IP_VS_DEST_CF_AVAILABLE) &&
	       !(READ_ONCE(dest->flags) & IP_VS_DEST_F_OVERLOAD);
}

/*
 * The client's address and port for this packet. For an ICMP error about a
 * flow (an "inverse" header) the client is the embedded packet's destination.
 * Ports are at the same place in TCP, UDP and SCTP headers; other protocols
 * hash with port 0.
 */
void mh_rs_flow_of(const struct sk_buff *skb, const struct ip_vs_iphdr *iph,
		   struct mh_rs_flow *flow)
{
	bool inverse = ip_vs_iph_inverse(iph);
	__be16 _ports[2], *ports;

	flow->addr = inverse ? iph->daddr : iph->saddr;
	flow->port = 0;
	switch (iph->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		ports = skb_header_pointer(skb, iph->len, sizeof(_ports), _ports);
		if (likely(ports))
			flow->port = inverse ? ports[1] : ports[0];
		break;
	default:
		break;
	}
}

/* "TCP 192.0.2.1:80", "UDP [2001:db8::1]:53", "FWM 7" or "FWM6 7". */
void mh_rs_svc_name(const struct ip_vs_service *svc, char *buf, size_t len)
{
	const char *proto;

	if (svc->fwmark) {
		snprintf(buf, len, "%s %u", svc->af == AF_INET6 ? "FWM6" : "FWM",
			 svc->fwmark);
		return;
	}
	switch (svc->protocol) {
	case IPPROTO_TCP:
		proto = "TCP";
		break;
	case IPPROTO_UDP:
		proto = "UDP";
		break;
	case IPPROTO_SCTP:
		proto = "SCTP";
		break;
	default:
		proto = "IP";
		break;
	}
#ifdef CONFIG_IP_VS_IPV6
	if (svc->af == AF_INET6) {
		snprintf(buf, len, "%s [%pI6c]:%u", proto, &svc->addr.in6,
			 ntohs(svc->port));
		return;
	}
#endif
	snprintf(buf, len, "%s %pI4:%u", proto, &svc->addr.ip, ntohs(svc->port));
}

/* The kernel's own hsiphash of a u32, for the KUnit cross-check. */
u32 mh_rs_kernel_hsiphash_u32(u32 value, u64 key0, u64 key1)
{
	hsiphash_key_t key = { .key = { key0, key1 } };

	return hsiphash(&value, sizeof(value), &key);
}
