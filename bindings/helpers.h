/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers of ip_vs_mh_rs (helpers.c): what the Rust binding layer cannot
 * call directly because the kernel provides it as a static inline function
 * or a macro, and the setup of the kernel objects it registers.
 */
#ifndef IP_VS_MH_RS_HELPERS_H
#define IP_VS_MH_RS_HELPERS_H

#include <linux/types.h>

struct delayed_work;
struct ip_vs_dest;
struct ip_vs_iphdr;
struct ip_vs_scheduler;
struct ip_vs_service;
struct module;
struct net;
struct pernet_operations;
struct seq_file;
struct sk_buff;
struct work_struct;

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
							struct ip_vs_iphdr *iph));

void mh_rs_svc_assert_locked(const struct ip_vs_service *svc);
bool mh_rs_svc_trylock(struct ip_vs_service *svc);
void mh_rs_svc_unlock(struct ip_vs_service *svc);
struct net *mh_rs_svc_net(const struct ip_vs_service *svc);

void mh_rs_dest_hold(struct ip_vs_dest *dest);
void mh_rs_dest_put(struct ip_vs_dest *dest);

bool mh_rs_skb_copy4(const struct sk_buff *skb, u32 off, u8 *buf);

u64 __percpu *mh_rs_percpu_u64_alloc(size_t n);
void mh_rs_percpu_free(u64 __percpu *counters);
void mh_rs_percpu_u64_inc(u64 __percpu *counters, size_t i);
void mh_rs_percpu_u64_sum(u64 __percpu *counters, size_t n, u64 *sum);
size_t mh_rs_percpu_bytes(size_t size);

int mh_rs_pernet_register(struct pernet_operations *ops, unsigned int *id,
			  int (*init)(struct net *net),
			  void (*exit)(struct net *net));
void mh_rs_pernet_unregister(struct pernet_operations *ops);
void **mh_rs_net_generic(const struct net *net, unsigned int id);
int mh_rs_proc_net_create(struct net *net, const char *name,
			  int (*show)(struct seq_file *seq, void *v));
void mh_rs_proc_net_remove(struct net *net, const char *name);
struct net *mh_rs_seq_net(struct seq_file *seq);

void mh_rs_delayed_work_init(struct delayed_work *dwork,
			     void (*func)(struct work_struct *work));
void mh_rs_delayed_work_queue(struct delayed_work *dwork, unsigned int ms);

bool mh_rs_param_upstream(void);
bool mh_rs_param_list_order(void);

s64 mh_rs_boottime_seconds(void);
u32 mh_rs_kernel_hsiphash_u32(u32 value, u64 key0, u64 key1);

#endif
