/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of bindgen: the kernel headers whose types the Rust side reads, and
 * the helpers' declarations.
 */
#include <linux/in.h>
#include <linux/socket.h>
#include <linux/workqueue.h>
#include <net/ip_vs.h>
#include <net/net_namespace.h>
#include "helpers.h"
