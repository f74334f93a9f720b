// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers of ip_vs_mh_rs: the static inline functions and macros of the
 * kernel's headers that the Rust binding layer (the .rs files beside this
 * one) cannot call, and the setup of the kernel objects it registers.
 * Nothing here knows the scheduler.
 */

#include <linux/fault-inject.h>
#include <linux/lockdep.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/seq_file_net.h>
#include <linux/siphash.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>
#include <net/ip_vs.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include "helpers.h"

/* Schedulers (bindings/scheduler.rs). */

int mh_rs_sched_register(struct ip_vs_scheduler *sched, const char *name,
			 struct module *owner,
			 int (*init_service)(struct ip_vs_service *svc),
			 void (*done_service)(struct ip_vs_service *svc),
			 int (*add_dest)(struct ip_vs_service *svc,
					 struct ip_vs_dest *dest),
			 int (*del_dest)(struct ip_vs_service *svc,
					 struct ip_vs_dest *dest),
			 int (*upd_dest)(struct ip_vs_service *svc,
					 struct ip_vs_dest *dest),
			 struct ip_vs_dest *(*schedule)(struct ip_vs_service *svc,
							const struct sk_buff *skb,
							struct ip_vs_iphdr *iph))
{
	/* IPVS refuses a scheduler whose list head is not an empty list. */
	INIT_LIST_HEAD(&sched->n_list);
	sched->name = (char *)name;
	atomic_set(&sched->refcnt, 0);
	sched->module = owner;
	sched->init_service = init_service;
	sched->done_service = done_service;
	sched->add_dest = add_dest;
	sched->del_dest = del_dest;
	sched->upd_dest = upd_dest;
	sched->schedule = schedule;
	return register_ip_vs_scheduler(sched);
}

/* Services (bindings/service.rs). */

void mh_rs_svc_assert_locked(const struct ip_vs_service *svc)
{
	lockdep_assert_held(&svc->ipvs->service_mutex);
}

bool mh_rs_svc_trylock(struct ip_vs_service *svc)
{
	return mutex_trylock(&svc->ipvs->service_mutex);
}

void mh_rs_svc_unlock(struct ip_vs_service *svc)
{
	mutex_unlock(&svc->ipvs->service_mutex);
}

struct net *mh_rs_svc_net(const struct ip_vs_service *svc)
{
	return svc->ipvs->net;
}

/* Real servers (bindings/dest.rs). */

void mh_rs_dest_hold(struct ip_vs_dest *dest)
{
	ip_vs_dest_hold(dest);
}

void mh_rs_dest_put(struct ip_vs_dest *dest)
{
	ip_vs_dest_put(dest);
}

/* Packets (bindings/packet.rs). */

/*
 * The 4 bytes at @off of the packet, wherever they are: copied into @buf
 * out of the fragments if the linear part does not hold them. The Rust side
 * reads them in place when it does; this is its slow path.
 */
bool mh_rs_skb_copy4(const struct sk_buff *skb, u32 off, u8 *buf)
{
	const u8 *p = skb_header_pointer(skb, off, 4, buf);

	if (!p)
		return false;
	if (p != buf)
		memcpy(buf, p, 4);
	return true;
}

/* Per-CPU counters (bindings/percpu.rs). */

#if defined(MH_RS_TEST_HOOKS) && defined(CONFIG_FAULT_INJECTION)
/*
 * failslab and fail_page_alloc do not reach the per-CPU allocator: this
 * fault point lets /proc/<pid>/fail-nth fail the counters too, like every
 * other allocation of the module (tests/reliability/faults.py). Test builds
 * for kernels with fault injection only.
 */
static DECLARE_FAULT_ATTR(mh_rs_fail_percpu);

static bool mh_rs_percpu_should_fail(size_t size)
{
	/* An injected failure is one log line, not a stack dump. */
	mh_rs_fail_percpu.verbose = 1;
	return should_fail(&mh_rs_fail_percpu, size);
}
#else
static bool mh_rs_percpu_should_fail(size_t size)
{
	return false;
}
#endif

u64 __percpu *mh_rs_percpu_u64_alloc(size_t n)
{
	if (mh_rs_percpu_should_fail(n * sizeof(u64)))
		return NULL;
	return __alloc_percpu(n * sizeof(u64), __alignof__(u64));
}

/* Callable from RCU callbacks: free_percpu() may be used in atomic context. */
void mh_rs_percpu_free(u64 __percpu *counters)
{
	free_percpu(counters);
}

/* Packet path: no shared cache line is written. */
void mh_rs_percpu_u64_inc(u64 __percpu *counters, size_t i)
{
	this_cpu_inc(counters[i]);
}

void mh_rs_percpu_u64_sum(u64 __percpu *counters, size_t n, u64 *sum)
{
	size_t i;
	int cpu;

	memset(sum, 0, n * sizeof(*sum));
	for_each_possible_cpu(cpu) {
		const u64 *c = per_cpu_ptr(counters, cpu);

		for (i = 0; i < n; i++)
			sum[i] += READ_ONCE(c[i]);
	}
}

/* What @size bytes per CPU take: a copy per possible CPU. */
size_t mh_rs_percpu_bytes(size_t size)
{
	return size * num_possible_cpus();
}

/* Per-namespace state and its /proc/net file (bindings/pernet.rs). */

int mh_rs_pernet_register(struct pernet_operations *ops, unsigned int *id,
			  int (*init)(struct net *net),
			  void (*exit)(struct net *net))
{
	/*
	 * @ops is memory Rust allocated for the kernel: give it its whole value
	 * at once (id and size are const members).
	 */
	const struct pernet_operations value = {
		.init = init,
		.exit = exit,
		.id = id,
		.size = sizeof(void *),
	};

	memcpy(ops, &value, sizeof(value));
	return register_pernet_subsys(ops);
}

void mh_rs_pernet_unregister(struct pernet_operations *ops)
{
	unregister_pernet_subsys(ops);
}

void **mh_rs_net_generic(const struct net *net, unsigned int id)
{
	return net_generic(net, id);
}

/* Without CONFIG_PROC_FS there is no file to make, and nothing fails. */
int mh_rs_proc_net_create(struct net *net, const char *name,
			  int (*show)(struct seq_file *seq, void *v))
{
	if (!IS_ENABLED(CONFIG_PROC_FS))
		return 0;
	if (!proc_create_net_single(name, 0444, net->proc_net, show, NULL))
		return -ENOMEM;
	return 0;
}

void mh_rs_proc_net_remove(struct net *net, const char *name)
{
	remove_proc_entry(name, net->proc_net);
}

struct net *mh_rs_seq_net(struct seq_file *seq)
{
	return seq_file_single_net(seq);
}

/* Delayed work (bindings/work.rs). */

void mh_rs_delayed_work_init(struct delayed_work *dwork,
			     void (*func)(struct work_struct *work))
{
	INIT_DELAYED_WORK(dwork, func);
}

void mh_rs_delayed_work_queue(struct delayed_work *dwork, unsigned int ms)
{
	schedule_delayed_work(dwork, msecs_to_jiffies(ms));
}

/*
 * Module parameters (bindings/params.rs): the two booleans, on kernels whose
 * Rust module! has no bool type (Kbuild defines MH_RS_C_BOOL_PARAMS). The
 * descriptions are those of ip_vs_mh_rs.rs's module!.
 */
#ifdef MH_RS_C_BOOL_PARAMS
static bool upstream;
module_param(upstream, bool, 0);
MODULE_PARM_DESC(upstream,
		 "1: every mh service in upstream mode, exactly as the in-tree C ip_vs_mh; 0 (default): only the services with the scheduler flag flag-3 (ipvsadm -b flag-3)");

static bool list_order;
module_param(list_order, bool, 0);
MODULE_PARM_DESC(list_order,
		 "Old name of upstream (list order is part of upstream mode)");

bool mh_rs_param_upstream(void)
{
	return upstream;
}

bool mh_rs_param_list_order(void)
{
	return list_order;
}
#endif

/* Time and hashing (bindings/mod.rs). */

s64 mh_rs_boottime_seconds(void)
{
	return ktime_get_boottime_seconds();
}

/* The kernel's own hsiphash of a u32, for the KUnit cross-check. */
u32 mh_rs_kernel_hsiphash_u32(u32 value, u64 key0, u64 key1)
{
	hsiphash_key_t key = { .key = { key0, key1 } };

	return hsiphash(&value, sizeof(value), &key);
}
