// SPDX-License-Identifier: GPL-2.0
/*
 * mh_bench: a test-only IPVS scheduler that measures another one, for
 * bench/sched (never part of the package).
 *
 * It registers the scheduler "mhbench", a proxy: a service bound to it is
 * served by a target scheduler, whose callbacks it calls and times. The
 * target is taken from a service bound to it: create a service with
 * "-s mhbench" (the probe), switch it to the target with "-E -s mh", write
 * the probe's port to the parameter "capture" and delete the probe ("reset"
 * forgets the target, when no proxied service is left). Every
 * service created with "-s mhbench" after that is served by the target:
 * its real servers' additions, edits and removals run through IPVS's own
 * control path into the target's callbacks, timed here; and writing
 * "PORT N" to "decide" makes N scheduling decisions for the proxied
 * service on that port, on prepared packets from 1024 clients, with bottom
 * halves off and in an RCU read section, as IPVS makes them; "result"
 * then reads "decisions N ns T refused R". "hooks" reads the time spent in
 * the target's callbacks since the last "reset" was written to it.
 *
 * Bounded: at most 10 000 000 decisions per write, in chunks of 4096 with a
 * reschedule point between them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/skbuff.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/ktime.h>
#include <linux/random.h>
#include <net/ip_vs.h>

#define MAX_SERVICES 16
#define CLIENTS 1024
#define CHUNK 4096
#define MAX_DECISIONS 10000000U

struct proxied {
	struct ip_vs_service *svc;
	struct ip_vs_scheduler *target;
};

/* Time spent in one kind of the target's callbacks. */
struct hook_time {
	u64 calls;
	u64 ns;
	u64 max_ns;
};

enum { HOOK_INIT, HOOK_ADD, HOOK_DEL, HOOK_UPD, HOOK_DONE, HOOKS };
static const char *const hook_names[HOOKS] = { "init", "add", "del", "upd", "done" };

static DEFINE_MUTEX(bench_lock);
/* The probe: a service created with "-s mhbench" while no target is set. */
static struct ip_vs_service *probe;
static struct ip_vs_scheduler *target;
static struct proxied services[MAX_SERVICES];
static struct hook_time hooks[HOOKS];
static char result[128] = "none";

static struct proxied *find_proxied(struct ip_vs_service *svc)
{
	int i;

	for (i = 0; i < MAX_SERVICES; i++)
		if (services[i].svc == svc)
			return &services[i];
	return NULL;
}

static void timed(int hook, u64 t0)
{
	u64 ns = ktime_get_ns() - t0;

	hooks[hook].calls++;
	hooks[hook].ns += ns;
	if (ns > hooks[hook].max_ns)
		hooks[hook].max_ns = ns;
}

/* IPVS calls the control callbacks under its configuration mutex. */
static int bench_init_service(struct ip_vs_service *svc)
{
	struct proxied *p;
	int ret;
	u64 t0;

	mutex_lock(&bench_lock);
	if (!target) {
		probe = svc;
		mutex_unlock(&bench_lock);
		return 0;
	}
	p = find_proxied(NULL);
	if (!p) {
		mutex_unlock(&bench_lock);
		pr_err("more than %d proxied services\n", MAX_SERVICES);
		return -ENOSPC;
	}
	t0 = ktime_get_ns();
	ret = target->init_service ? target->init_service(svc) : 0;
	timed(HOOK_INIT, t0);
	if (!ret) {
		p->target = target;
		p->svc = svc;
	}
	mutex_unlock(&bench_lock);
	return ret;
}

static void bench_done_service(struct ip_vs_service *svc)
{
	struct proxied *p;
	u64 t0;

	mutex_lock(&bench_lock);
	if (svc == probe) {
		/* Switched to the target: the probe stays until captured. */
		mutex_unlock(&bench_lock);
		return;
	}
	p = find_proxied(svc);
	if (p) {
		t0 = ktime_get_ns();
		if (p->target->done_service)
			p->target->done_service(svc);
		timed(HOOK_DONE, t0);
		p->svc = NULL;
		p->target = NULL;
	}
	mutex_unlock(&bench_lock);
}

static int dest_hook(int hook, struct ip_vs_service *svc, struct ip_vs_dest *dest)
{
	int (*fn)(struct ip_vs_service *svc, struct ip_vs_dest *dest) = NULL;
	struct proxied *p;
	int ret = 0;
	u64 t0;

	mutex_lock(&bench_lock);
	p = find_proxied(svc);
	if (p) {
		if (hook == HOOK_ADD)
			fn = p->target->add_dest;
		else if (hook == HOOK_DEL)
			fn = p->target->del_dest;
		else
			fn = p->target->upd_dest;
	}
	if (fn) {
		t0 = ktime_get_ns();
		ret = fn(svc, dest);
		timed(hook, t0);
	}
	mutex_unlock(&bench_lock);
	return ret;
}

static int bench_add_dest(struct ip_vs_service *svc, struct ip_vs_dest *dest)
{
	return dest_hook(HOOK_ADD, svc, dest);
}

static int bench_del_dest(struct ip_vs_service *svc, struct ip_vs_dest *dest)
{
	return dest_hook(HOOK_DEL, svc, dest);
}

static int bench_upd_dest(struct ip_vs_service *svc, struct ip_vs_dest *dest)
{
	return dest_hook(HOOK_UPD, svc, dest);
}

/*
 * The packet path: no lock. A proxied service's entry is set before IPVS
 * can schedule for it and cleared only in done_service, after which IPVS
 * no longer calls this for it.
 */
static struct ip_vs_dest *bench_schedule(struct ip_vs_service *svc,
					 const struct sk_buff *skb,
					 struct ip_vs_iphdr *iph)
{
	int i;

	for (i = 0; i < MAX_SERVICES; i++) {
		struct ip_vs_scheduler *t = READ_ONCE(services[i].target);

		if (READ_ONCE(services[i].svc) == svc && t)
			return t->schedule(svc, skb, iph);
	}
	return NULL;
}

static struct ip_vs_scheduler bench_scheduler = {
	.name = "mhbench",
	.refcnt = ATOMIC_INIT(0),
	.module = THIS_MODULE,
	.n_list = LIST_HEAD_INIT(bench_scheduler.n_list),
	.init_service = bench_init_service,
	.done_service = bench_done_service,
	.add_dest = bench_add_dest,
	.del_dest = bench_del_dest,
	.upd_dest = bench_upd_dest,
	.schedule = bench_schedule,
};

/* "capture" (write PORT): the probe on that port gives the target. */
static int capture_set(const char *val, const struct kernel_param *kp)
{
	struct ip_vs_scheduler *sched;
	u16 port;
	int ret;

	ret = kstrtou16(val, 0, &port);
	if (ret)
		return ret;
	mutex_lock(&bench_lock);
	if (!probe || ntohs(probe->port) != port) {
		mutex_unlock(&bench_lock);
		pr_err("no probe service on port %u\n", port);
		return -ENOENT;
	}
	sched = rcu_dereference_protected(probe->scheduler, 1);
	if (!sched || sched == &bench_scheduler || !try_module_get(sched->module)) {
		mutex_unlock(&bench_lock);
		pr_err("the probe on port %u is not bound to another scheduler\n", port);
		return -EINVAL;
	}
	if (target)
		module_put(target->module);
	target = sched;
	probe = NULL;
	mutex_unlock(&bench_lock);
	pr_info("proxying new services to scheduler '%s'\n", sched->name);
	return 0;
}

static const struct kernel_param_ops capture_ops = {
	.set = capture_set,
};
module_param_cb(capture, &capture_ops, NULL, 0200);
MODULE_PARM_DESC(capture, "PORT: the probe service on PORT gives the target scheduler");

/* "reset" (write 1): no target; the next new service is a probe again. */
static int reset_set(const char *val, const struct kernel_param *kp)
{
	int i, ret = 0;

	mutex_lock(&bench_lock);
	for (i = 0; i < MAX_SERVICES; i++)
		if (services[i].svc)
			ret = -EBUSY;
	if (!ret) {
		if (target)
			module_put(target->module);
		target = NULL;
		probe = NULL;
	}
	mutex_unlock(&bench_lock);
	if (ret)
		pr_err("cannot reset while proxied services exist\n");
	return ret;
}

static const struct kernel_param_ops reset_ops = {
	.set = reset_set,
};
module_param_cb(reset, &reset_ops, NULL, 0200);
MODULE_PARM_DESC(reset, "1: forget the target (no proxied service may be left)");

/* A packet from client i to the service, as IPVS would schedule it. */
static struct sk_buff *make_packet(struct ip_vs_service *svc, u32 i)
{
	unsigned int l4 = svc->protocol == IPPROTO_UDP ? sizeof(struct udphdr) :
							 sizeof(struct tcphdr);
	unsigned int l3 = svc->af == AF_INET6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	struct sk_buff *skb = alloc_skb(l3 + l4 + 64, GFP_KERNEL);
	__be16 sport = htons(1024 + (i * 37) % 64000);
	__be16 *ports;

	if (!skb)
		return NULL;
	skb_reserve(skb, 32);
	skb_reset_network_header(skb);
	if (svc->af == AF_INET6) {
		struct ipv6hdr *h = skb_put_zero(skb, l3);

		h->version = 6;
		h->nexthdr = svc->protocol;
		h->hop_limit = 64;
		h->payload_len = htons(l4);
		h->saddr.s6_addr32[0] = htonl(0x20010db8);
		h->saddr.s6_addr32[2] = htonl(i * 2654435761U);
		h->saddr.s6_addr32[3] = htonl(i + 1);
		h->daddr = svc->addr.in6;
		skb->protocol = htons(ETH_P_IPV6);
	} else {
		struct iphdr *h = skb_put_zero(skb, l3);

		h->version = 4;
		h->ihl = 5;
		h->ttl = 64;
		h->protocol = svc->protocol;
		h->tot_len = htons(l3 + l4);
		h->saddr = htonl(0x0ac80000 | ((i * 2654435761U) & 0xffff));
		h->daddr = svc->addr.ip;
		skb->protocol = htons(ETH_P_IP);
	}
	skb_set_transport_header(skb, l3);
	ports = skb_put_zero(skb, l4);
	ports[0] = sport;
	ports[1] = svc->port;
	if (svc->protocol == IPPROTO_TCP)
		((struct tcphdr *)ports)->syn = 1;
	return skb;
}

/* "decide" (write "PORT N"): N decisions for the proxied service on PORT. */
static int decide_set(const char *val, const struct kernel_param *kp)
{
	struct ip_vs_scheduler *sched = NULL;
	struct ip_vs_service *svc = NULL;
	struct sk_buff **skbs;
	struct ip_vs_iphdr *iphs;
	unsigned int port, n, done, refused = 0, i;
	u64 ns = 0;
	int ret = 0;

	if (sscanf(val, "%u %u", &port, &n) != 2 || n == 0 || n > MAX_DECISIONS)
		return -EINVAL;
	skbs = kcalloc(CLIENTS, sizeof(*skbs), GFP_KERNEL);
	iphs = kcalloc(CLIENTS, sizeof(*iphs), GFP_KERNEL);
	if (!skbs || !iphs) {
		ret = -ENOMEM;
		goto out;
	}
	/* The service stays while the lock is held (done_service takes it). */
	mutex_lock(&bench_lock);
	for (i = 0; i < MAX_SERVICES; i++) {
		if (services[i].svc && ntohs(services[i].svc->port) == port) {
			svc = services[i].svc;
			sched = services[i].target;
		}
	}
	if (!svc) {
		pr_err("no proxied service on port %u\n", port);
		ret = -ENOENT;
		goto unlock;
	}
	for (i = 0; i < CLIENTS; i++) {
		skbs[i] = make_packet(svc, i);
		if (!skbs[i] || ip_vs_fill_iph_skb(svc->af, skbs[i], false, &iphs[i]) < 0) {
			ret = -ENOMEM;
			goto unlock;
		}
	}
	for (done = 0; done < n; done += CHUNK) {
		unsigned int k = min(CHUNK, n - done);
		u64 t0;

		local_bh_disable();
		rcu_read_lock();
		t0 = ktime_get_ns();
		for (i = 0; i < k; i++) {
			unsigned int c = (done + i) % CLIENTS;

			if (!sched->schedule(svc, skbs[c], &iphs[c]))
				refused++;
		}
		ns += ktime_get_ns() - t0;
		rcu_read_unlock();
		local_bh_enable();
		cond_resched();
	}
	snprintf(result, sizeof(result), "decisions %u ns %llu refused %u", n, ns, refused);
unlock:
	mutex_unlock(&bench_lock);
out:
	if (skbs)
		for (i = 0; i < CLIENTS; i++)
			kfree_skb(skbs[i]);
	kfree(skbs);
	kfree(iphs);
	return ret;
}

static const struct kernel_param_ops decide_ops = {
	.set = decide_set,
};
module_param_cb(decide, &decide_ops, NULL, 0200);
MODULE_PARM_DESC(decide, "PORT N: N decisions for the proxied service on PORT");

module_param_string(result, result, sizeof(result), 0444);
MODULE_PARM_DESC(result, "the last decide's result");

/* "hooks": the time in the target's callbacks; writing "reset" zeroes it. */
static int hooks_get(char *buf, const struct kernel_param *kp)
{
	int i, len = 0;

	mutex_lock(&bench_lock);
	for (i = 0; i < HOOKS; i++)
		len += sysfs_emit_at(buf, len, "%s %llu %llu %llu\n", hook_names[i],
				     hooks[i].calls, hooks[i].ns, hooks[i].max_ns);
	mutex_unlock(&bench_lock);
	return len;
}

static int hooks_set(const char *val, const struct kernel_param *kp)
{
	if (!sysfs_streq(val, "reset"))
		return -EINVAL;
	mutex_lock(&bench_lock);
	memset(hooks, 0, sizeof(hooks));
	mutex_unlock(&bench_lock);
	return 0;
}

static const struct kernel_param_ops hooks_ops = {
	.get = hooks_get,
	.set = hooks_set,
};
module_param_cb(hooks, &hooks_ops, NULL, 0600);
MODULE_PARM_DESC(hooks, "time in the target's callbacks: NAME calls ns max_ns; write reset");

static int __init mh_bench_init(void)
{
	return register_ip_vs_scheduler(&bench_scheduler);
}

static void __exit mh_bench_exit(void)
{
	unregister_ip_vs_scheduler(&bench_scheduler);
	if (target)
		module_put(target->module);
}

module_init(mh_bench_init);
module_exit(mh_bench_exit);
MODULE_DESCRIPTION("IPVS scheduler benchmark proxy (test only)");
MODULE_LICENSE("GPL");
