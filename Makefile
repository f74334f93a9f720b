# SPDX-License-Identifier: GPL-2.0
#
# ip_vs_mh_rs: build the module, and the project's harness targets.
#
#   make [KDIR=<kernel build tree>]   build ip_vs_mh_rs.ko (default: running kernel)
#   make clippy                       the same, linted by clippy with the kernel's lints
#   make check                        every test (tests/README.md)
#   make kernels                      the suites on every other Debian kernel (docs/kernels.md)
#   make demo                         the live demo in a VM (Debian's stock kernel)
#   make kernel [KERNEL=NAME]         prepare a kernel of kernel/kernels (default: Debian's)
#   make vm CMD='uname -r'            run a command in a VM (KERNEL=NAME for another kernel)
#
# Kbuild reads the file Kbuild, not this one.

KDIR ?= /lib/modules/$(shell uname -r)/build
RUSTC ?= rustc
# A tree built with clang needs the module built with clang too.
LLVM_FLAG := $(if $(shell grep -s '^CONFIG_CC_IS_CLANG=y' $(KDIR)/.config),LLVM=1)
# Use the compiler the kernel names in its configuration (Debian builds with
# x86_64-linux-gnu-gcc-14), unless CC was given.
ifeq ($(origin CC),default)
KERNEL_CC := $(shell sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' $(KDIR)/.config 2>/dev/null)
CC_FLAG := $(if $(KERNEL_CC),$(if $(shell command -v $(KERNEL_CC)),CC=$(KERNEL_CC)))
endif
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) $(LLVM_FLAG) $(CC_FLAG)

.PHONY: all modules module clippy clean modules_install kernel toolchain vm check kernels demo bench

all modules module:
	@sh $(CURDIR)/scripts/check-kdir.sh $(KDIR) $(RUSTC)
	$(KMAKE) modules

clippy:
	@sh $(CURDIR)/scripts/check-kdir.sh $(KDIR) $(RUSTC)
	$(KMAKE) CLIPPY=1 KRUSTFLAGS=-Dwarnings modules

modules_install:
	$(KMAKE) modules_install

clean:
	$(KMAKE) clean 2>/dev/null || rm -f *.o *.ko *.mod* .*.cmd bindings/*.o bindings/.*.cmd \
		bindings/generated.rs bindings/layout.rs bindings/layout.s Module.symvers modules.order

toolchain:
	@scripts/toolchain.sh

kernel:
	@scripts/kernel.sh $(KERNEL)

vm:
	tests/vm/run $(if $(KERNEL),--kernel $(KERNEL)) -- $(CMD)

check:
	scripts/check.sh

kernels:
	scripts/kernels-check.sh

demo:
	tests/demo/run

bench:
	bench/run
