/*
 * Unit tests of procfake's pure half: the identity file, the whitelist, path
 * canonicalisation, the tree (contents, links, collisions, children).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pf.h"

static struct pf_identity id;
static struct pf_tree tree;

#define ONE_GPU \
	"name=NVIDIA H100 80GB HBM3\n" \
	"uuid=GPU-0123ABCD-4567-89ab-cdef-0123456789ab\n" \
	"pci_bus_id=00000000:01:00.0\n" \
	"memory_total=85520809984\n" \
	"driver_version=580.159.04\n" \
	"cuda_version=13000\n"

static int parse(const char *text)
{
	return pf_identity_parse(text, strlen(text), &id);
}

static void test_identity_short_form(void **state)
{
	assert_int_equal(parse("# comment\n\n" ONE_GPU "future_key=whatever\r\n"), 0);
	assert_int_equal(id.ngpus, 1);
	assert_string_equal(id.gpu[0].name, "NVIDIA H100 80GB HBM3");
	/* NVIDIA prints UUIDs in lower case */
	assert_string_equal(id.gpu[0].uuid, "GPU-0123abcd-4567-89ab-cdef-0123456789ab");
	assert_int_equal(id.gpu[0].domain, 0);
	assert_int_equal(id.gpu[0].bus, 1);
	assert_int_equal(id.gpu[0].dev, 0);
	assert_int_equal(id.gpu[0].fn, 0);
	assert_true(id.gpu[0].memory_total == 85520809984ull);
	assert_string_equal(id.driver_version, "580.159.04");
	assert_int_equal(id.cuda_version, 13000);
	assert_int_equal(id.gpu[0].subsys_vendor_id, 0x10de);
}

static void test_identity_several_gpus(void **state)
{
	static const char text[] =
		"driver_version=580.159.04\n"
		"gpu.0.name=A\ngpu.0.uuid=GPU-00000000-0000-0000-0000-000000000000\n"
		"gpu.0.pci_bus_id=0000:01:00.0\n"
		"gpu.1.name=B\ngpu.1.uuid=GPU-11111111-0000-0000-0000-000000000000\n"
		"gpu.1.pci_bus_id=0000:41:00.0\ngpu.1.pci_device_id=0x2330\n";

	assert_int_equal(parse(text), 0);
	assert_int_equal(id.ngpus, 2);
	assert_string_equal(id.gpu[1].name, "B");
	assert_int_equal(id.gpu[1].bus, 0x41);
	assert_int_equal(id.gpu[1].pci_device_id, 0x2330);
}

static void test_identity_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"# only a comment\n",
		"no equals sign\n" ONE_GPU,
		"=value\n" ONE_GPU,
		ONE_GPU "name=twice\n",
		ONE_GPU "gpu.0.name=short and long form\n",
		ONE_GPU "driver_version=580\n",
		"name=X\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789ab\npci_bus_id=00000000:01:00.0\n",
		"name=X\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789a\npci_bus_id=0000:01:00.0\n"
		"driver_version=1\n",
		"name=X\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789ag\npci_bus_id=0000:01:00.0\n"
		"driver_version=1\n",
		"name=X\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789ab\npci_bus_id=0000:01:20.0\n"
		"driver_version=1\n",
		"name=X\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789ab\npci_bus_id=0000-01:00.0\n"
		"driver_version=1\n",
		"name=X\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789ab\npci_bus_id=0000:01:00.0\n"
		"driver_version=v580\n",
		"name=\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789ab\npci_bus_id=0000:01:00.0\n"
		"driver_version=1\n",
		"name=tab\there\nuuid=GPU-0123abcd-4567-89ab-cdef-0123456789ab\n"
		"pci_bus_id=0000:01:00.0\ndriver_version=1\n",
		ONE_GPU "memory_total=12x\n",
		ONE_GPU "memory_total=99999999999999999999999\n",
		ONE_GPU "pci_device_id=0x10000\n",
		ONE_GPU "gpu.9.name=out of range\n",
		ONE_GPU "gpu.10.name=two digits\n",
		ONE_GPU "gpu.x.name=bad index\n",
		/* gpu 1 without gpu 0's keys given in either form is incomplete */
		"driver_version=1\ngpu.1.name=X\ngpu.1.uuid=GPU-0123abcd-4567-89ab-cdef-0123456789ab\n"
		"gpu.1.pci_bus_id=0000:01:00.0\n",
		/* two GPUs at one address */
		ONE_GPU "gpu.1.name=B\ngpu.1.uuid=GPU-11111111-0000-0000-0000-000000000000\n"
		"gpu.1.pci_bus_id=0000:01:00.0\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i]) != -EINVAL)
			fail_msg("accepted bad identity #%zu", i);
		assert_int_equal(id.ngpus, 0);
	}
	/* an embedded NUL */
	assert_int_equal(pf_identity_parse(ONE_GPU "\0x=y\n", sizeof(ONE_GPU) + 4, &id), -EINVAL);
}

static void test_names(void **state)
{
	static const char conf[] = "# c\n\n  mygpuapp \t\nname-longer-than-fifteen\n";
	struct pf_names names;

	assert_true(pf_names_match(NULL, "ollama\n", 7));
	assert_true(pf_names_match(NULL, "llama-server\n", 13));
	assert_true(pf_names_match(NULL, "ollama_llama_se\n", 16));
	assert_false(pf_names_match(NULL, "ollama2\n", 8));
	assert_false(pf_names_match(NULL, "olla\n", 5));
	assert_false(pf_names_match(NULL, "\n", 1));
	assert_false(pf_names_match(NULL, "mygpuapp\n", 9));
	assert_int_equal(pf_names_parse(conf, sizeof(conf) - 1, &names), 0);
	assert_int_equal(names.n, 2);
	assert_true(pf_names_match(&names, "mygpuapp\n", 9));
	/* comm keeps 15 bytes, so a longer configured name matches its first 15 */
	assert_true(pf_names_match(&names, "name-longer-tha\n", 16));
	assert_false(pf_names_match(&names, "mygpuap\n", 8));
	assert_int_equal(pf_names_parse("a\0b", 3, &names), -EINVAL);
}

static void test_canon(void **state)
{
	char out[PF_PATH_MAX];

	assert_int_equal(pf_path_canon("//sys/./bus//pci/../pci/devices/", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/bus/pci/devices");
	assert_int_equal(pf_path_canon("/..", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(pf_path_canon("relative", out, sizeof(out)), -EINVAL);
	assert_int_equal(pf_path_canon("/aaaaaaaaaa", out, 8), -ENAMETOOLONG);
}

static const char *colliding;

static int exists_none(const char *path)
{
	return colliding && strcmp(path, colliding) == 0;
}

static const struct pf_node *find(const char *path, int follow)
{
	return pf_tree_lookup(&tree, path, follow);
}

static void test_tree_contents(void **state)
{
	const struct pf_node *n;

	assert_int_equal(parse(ONE_GPU "pci_device_id=0x2330\nvbios_version=96.00.99.00.01\n"), 0);
	colliding = NULL;
	assert_int_equal(pf_tree_build(&tree, &id, exists_none), 0);

	n = find("/proc/driver/nvidia/gpus/0000:01:00.0/information", 1);
	assert_non_null(n);
	assert_int_equal(n->type, PF_FILE);
	assert_string_equal(n->data,
		"Model: \t\t NVIDIA H100 80GB HBM3\n"
		"IRQ:   \t\t 0\n"
		"GPU UUID: \t GPU-0123abcd-4567-89ab-cdef-0123456789ab\n"
		"Video BIOS: \t 96.00.99.00.01\n"
		"Bus Type: \t PCIe\n"
		"DMA Size: \t 52 bits\n"
		"DMA Mask: \t 0xfffffffffffff\n"
		"Bus Location: \t 0000:01:00.0\n"
		"Device Minor: \t 0\n"
		"GPU Firmware: \t 580.159.04\n"
		"GPU Excluded:\t No\n");
	assert_int_equal(n->len, strlen(n->data));

	n = find("/proc/driver/nvidia/params", 1);
	assert_non_null(n);
	assert_non_null(strstr(n->data, "\nModifyDeviceFiles: 0\n"));
	n = find("/proc/driver/nvidia/version", 1);
	assert_non_null(n);
	assert_non_null(strstr(n->data, "  580.159.04  "));
	assert_int_equal(strncmp(n->data, "NVRM version: NVIDIA UNIX ", 26), 0);

	n = find("/sys/bus/pci/devices/0000:01:00.0", 0);
	assert_non_null(n);
	assert_int_equal(n->type, PF_LINK);
	assert_string_equal(n->data, "../../../devices/pci0000:01/0000:01:00.0");
	assert_string_equal(n->target, "/sys/devices/pci0000:01/0000:01:00.0");
	n = find("/sys/bus/pci/devices/0000:01:00.0", 1);
	assert_non_null(n);
	assert_int_equal(n->type, PF_DIR);
	n = find("/sys/bus/pci/devices/0000:01:00.0/", 0);
	assert_non_null(n);
	assert_int_equal(n->type, PF_DIR);
	n = find("/sys/bus/pci/devices/0000:01:00.0/../0000:01:00.0/vendor", 1);
	assert_non_null(n);
	assert_string_equal(n->data, "0x10de\n");
	n = find("/sys/bus//pci/devices/0000:01:00.0/device", 0);
	assert_non_null(n);
	assert_string_equal(n->data, "0x2330\n");
	n = find("/sys/devices/pci0000:01/0000:01:00.0/class", 1);
	assert_non_null(n);
	assert_string_equal(n->data, "0x030200\n");
	n = find("/sys/devices/pci0000:01/0000:01:00.0/config", 1);
	assert_non_null(n);
	assert_int_equal(n->len, 64);
	assert_int_equal((unsigned char)n->data[0], 0xde);
	assert_int_equal((unsigned char)n->data[1], 0x10);
	assert_int_equal((unsigned char)n->data[2], 0x30);
	assert_int_equal((unsigned char)n->data[3], 0x23);
	n = find("/sys/bus/pci/devices/0000:01:00.0/driver", 0);
	assert_non_null(n);
	assert_int_equal(n->type, PF_LINK);
	assert_string_equal(n->target, "/sys/bus/pci/drivers/nvidia");
	n = find("/sys/bus/pci/devices/0000:01:00.0/driver", 1);
	assert_non_null(n);
	assert_int_equal(n->type, PF_DIR);
	n = find("/sys/bus/pci/drivers/nvidia/0000:01:00.0/vendor", 1);
	assert_non_null(n);
	assert_string_equal(n->data, "0x10de\n");
	n = find("/sys/module/nvidia/version", 1);
	assert_non_null(n);
	assert_string_equal(n->data, "580.159.04\n");

	n = find("/dev/nvidia0", 1);
	assert_non_null(n);
	assert_int_equal(n->type, PF_CHR);
	assert_int_equal(n->major, 195);
	assert_int_equal(n->minor, 0);
	n = find("/dev/nvidiactl", 1);
	assert_non_null(n);
	assert_int_equal(n->minor, 255);
	assert_null(find("/dev/nvidia1", 1));
	assert_null(find("/proc/driver/nvidia/gpus/0000:01:00.0/registry", 1));
	assert_null(find("/etc/passwd", 1));
	assert_null(find("/proc", 1));
}

static void test_tree_children(void **state)
{
	const struct pf_node *dir, *c;
	char names[512] = "";
	unsigned i;

	assert_int_equal(parse(ONE_GPU), 0);
	colliding = NULL;
	assert_int_equal(pf_tree_build(&tree, &id, exists_none), 0);
	dir = find("/proc/driver/nvidia", 1);
	assert_non_null(dir);
	for (i = 0; (c = pf_tree_child(&tree, dir, i)) != NULL; i++) {
		strcat(names, pf_node_name(c));
		strcat(names, " ");
	}
	assert_string_equal(names, "gpus version params ");
	dir = find("/dev", 1);
	assert_non_null(dir);
	names[0] = '\0';
	for (i = 0; (c = pf_tree_child(&tree, dir, i)) != NULL; i++) {
		strcat(names, pf_node_name(c));
		strcat(names, " ");
	}
	assert_string_equal(names, "nvidiactl nvidia-uvm nvidia0 ");
	dir = find("/sys/bus/pci/devices", 1);
	assert_non_null(dir);
	c = pf_tree_child(&tree, dir, 0);
	assert_non_null(c);
	assert_string_equal(pf_node_name(c), "0000:01:00.0");
	assert_null(pf_tree_child(&tree, dir, 1));
}

static void test_tree_collision_moves(void **state)
{
	static const char two[] =
		"driver_version=1\n"
		"gpu.0.name=A\ngpu.0.uuid=GPU-00000000-0000-0000-0000-000000000000\n"
		"gpu.0.pci_bus_id=0000:01:00.0\n"
		"gpu.1.name=B\ngpu.1.uuid=GPU-11111111-0000-0000-0000-000000000000\n"
		"gpu.1.pci_bus_id=0000:02:00.0\n";

	assert_int_equal(parse(two), 0);
	colliding = "/sys/bus/pci/devices/0000:01:00.0";
	assert_int_equal(pf_tree_build(&tree, &id, exists_none), 0);
	/* 01 is real, so gpu 0 moves to 02; gpu 1 then moves past it to 03 */
	assert_int_equal(id.gpu[0].bus, 2);
	assert_int_equal(id.gpu[1].bus, 3);
	assert_null(find("/sys/bus/pci/devices/0000:01:00.0", 0));
	assert_non_null(find("/sys/bus/pci/devices/0000:02:00.0", 0));
	assert_non_null(find("/proc/driver/nvidia/gpus/0000:03:00.0/information", 1));
	assert_non_null(strstr(find("/proc/driver/nvidia/gpus/0000:02:00.0/information", 1)->data,
			       "Bus Location: \t 0000:02:00.0\n"));
	assert_non_null(find("/dev/nvidia1", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_short_form),
		cmocka_unit_test(test_identity_several_gpus),
		cmocka_unit_test(test_identity_rejects),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_canon),
		cmocka_unit_test(test_tree_contents),
		cmocka_unit_test(test_tree_children),
		cmocka_unit_test(test_tree_collision_moves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
