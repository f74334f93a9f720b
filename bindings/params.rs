// SPDX-License-Identifier: GPL-2.0

//! The module's boolean parameters on kernels whose `module!` cannot declare
//! them (before Linux 7.3): `bindings/helpers.c` declares them with
//! `module_param()`, and they are read here. Kbuild chooses (it detects
//! `bool` in the kernel crate's `module!`).
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)

use super::raw;

/// `upstream=`, as given at load.
pub(crate) fn upstream() -> bool {
    // SAFETY: Reads a variable that only the module loader writes, before
    // the module's init runs.
    unsafe { raw::mh_rs_param_upstream() }
}

/// `list_order=`, as given at load.
pub(crate) fn list_order() -> bool {
    // SAFETY: As `upstream`.
    unsafe { raw::mh_rs_param_list_order() }
}
