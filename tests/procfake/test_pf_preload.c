/*
 * procfake under LD_PRELOAD: the probe, copied to real files named like
 * Ollama's processes and like other programs, checks every entry point.
 * Whitelisted names must see the identity exactly (probe exit 0); any other
 * name, a missing or garbled identity, or no preload at all must see none of
 * it (probe exit 2: every check failed).
 *
 * usage: test_pf_preload PROBE LIBRARY  (the library is the test variant,
 * built to read PF_TEST_ROOT/identity and PF_TEST_ROOT/procfake.conf)
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#define ROOT PF_TEST_ROOT

static const char *probe, *library;

#define NAME "NVIDIA H100 80GB HBM3"
#define UUID "GPU-8a1f3c2e-5b7d-4e9a-b0c1-d2e3f4a5b6c7"
#define DRV "580.159.04"
#define DEVID "0x2330"
#define VBIOS "96.00.99.00.01"

static char bdf[32];	/* sysfs form of the identity's address */
static char busid[48];	/* CUDA form, as the identity file has it */

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void write_identity(const char *address)
{
	char text[1024];
	int n = snprintf(text, sizeof(text),
		"# written by the procfake tests\n"
		"name=" NAME "\nuuid=" UUID "\npci_bus_id=%s\nmemory_total=85520809984\n"
		"driver_version=" DRV "\ncuda_version=13000\npci_device_id=" DEVID "\n"
		"pci_subsystem_device_id=0x16c1\nvbios_version=" VBIOS "\n", address);

	write_file(ROOT "/identity", text, (size_t)n);
}

/* A real copy, not a link: comm is the executed file's name. */
static void install_as(const char *name)
{
	char path[512], buf[65536];
	int in, out;
	ssize_t n;

	snprintf(path, sizeof(path), ROOT "/bin/%s", name);
	in = open(probe, O_RDONLY);
	assert_true(in >= 0);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* Runs ROOT/bin/NAME check … and returns its exit status. */
static int run_probe(const char *name, int preload)
{
	char path[512], log[512], env_preload[1024];
	char *argv[] = { path, "check", NAME, UUID, bdf, DRV, DEVID, VBIOS, NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", env_preload, NULL };
	int status;
	pid_t pid;

	snprintf(path, sizeof(path), ROOT "/bin/%s", name);
	snprintf(log, sizeof(log), ROOT "/%s.log", name);
	snprintf(env_preload, sizeof(env_preload), "LD_PRELOAD=%s", preload ? library : "");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execve(path, argv, envp);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status)) {
		fprintf(stderr, "%s: killed by signal %d (log %s)\n", name, WTERMSIG(status), log);
		return -1;
	}
	fprintf(stderr, "%s (preload %d): exit %d, log %s\n", name, preload,
		WEXITSTATUS(status), log);
	return WEXITSTATUS(status);
}

/* An address no real device has here, so nothing is moved. */
static void pick_free_address(void)
{
	unsigned bus;

	for (bus = 0xc3; bus < 0x1c3; bus++) {
		char path[128];

		snprintf(bdf, sizeof(bdf), "0000:%02x:00.0", bus & 0xff);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
		if (access(path, F_OK) != 0)
			break;
	}
	snprintf(busid, sizeof(busid), "0000%s", bdf);
}

static int setup(void **state)
{
	pick_free_address();
	mkdir(ROOT, 0755);
	mkdir(ROOT "/bin", 0755);
	unlink(ROOT "/procfake.conf");
	install_as("ollama");
	install_as("llama-server");
	install_as("ollama_llama_server");	/* comm: ollama_llama_se */
	install_as("mygpuapp");
	install_as("notollama");
	install_as("ollama2");
	write_identity(busid);
	return 0;
}

static void test_whitelisted_names_see_identity(void **state)
{
	assert_int_equal(run_probe("ollama", 1), 0);
	assert_int_equal(run_probe("llama-server", 1), 0);
	assert_int_equal(run_probe("ollama_llama_server", 1), 0);
}

static void test_other_names_see_nothing(void **state)
{
	assert_int_equal(run_probe("notollama", 1), 2);
	assert_int_equal(run_probe("ollama2", 1), 2);
	assert_int_equal(run_probe("mygpuapp", 1), 2);
}

static void test_without_preload_nothing(void **state)
{
	assert_int_equal(run_probe("ollama", 0), 2);
}

static void test_config_adds_names(void **state)
{
	static const char conf[] = "# extra GPU programs\n\n  mygpuapp  \nanother\n";

	write_file(ROOT "/procfake.conf", conf, sizeof(conf) - 1);
	assert_int_equal(run_probe("mygpuapp", 1), 0);
	assert_int_equal(run_probe("notollama", 1), 2);
	assert_int_equal(run_probe("ollama", 1), 0);
	unlink(ROOT "/procfake.conf");
	assert_int_equal(run_probe("mygpuapp", 1), 2);
}

static void test_missing_identity_not_faked(void **state)
{
	unlink(ROOT "/identity");
	assert_int_equal(run_probe("ollama", 1), 2);
	write_identity(busid);
}

static void test_garbled_identity_not_faked(void **state)
{
	static const char *const bad[] = {
		"",
		"name=X\n",
		"this is not an identity file\n",
		"name=" NAME "\nuuid=GPU-123\npci_bus_id=0000:c3:00.0\ndriver_version=" DRV "\n",
		"name=" NAME "\nuuid=" UUID "\npci_bus_id=zz\ndriver_version=" DRV "\n",
		"name=" NAME "\nuuid=" UUID "\npci_bus_id=0000:c3:00.0\n",
		"name=" NAME "\nname=again\nuuid=" UUID "\npci_bus_id=0000:c3:00.0\ndriver_version=1\n",
	};
	char junk[8192];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(ROOT "/identity", bad[i], strlen(bad[i]));
		assert_int_equal(run_probe("ollama", 1), 2);
	}
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	write_file(ROOT "/identity", junk, sizeof(junk));
	assert_int_equal(run_probe("ollama", 1), 2);
	/* larger than procfake reads: refused, not cut short */
	{
		static char big[40000];

		memset(big, '#', sizeof(big));
		big[sizeof(big) - 1] = '\n';
		write_file(ROOT "/identity", big, sizeof(big));
		assert_int_equal(run_probe("ollama", 1), 2);
	}
	write_identity(busid);
	assert_int_equal(run_probe("ollama", 1), 0);
}

/* A bus id naming a real device is moved to the next free bus number. */
static void test_colliding_bus_id_moved(void **state)
{
	unsigned dom = 0, bus = 0, dev = 0, fn = 0;
	char real[64] = "", path[128];
	FILE *ls = popen("ls /sys/bus/pci/devices 2>/dev/null | head -1", "r");

	if (ls) {
		if (!fgets(real, sizeof(real), ls))
			real[0] = '\0';
		pclose(ls);
	}
	if (sscanf(real, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4) {
		fprintf(stderr, "no PCI devices here: the collision case has nothing to collide with\n");
		skip();
	}
	real[strcspn(real, "\n")] = '\0';
	write_identity(real);
	do {
		bus = (bus + 1) & 0xff;
		snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%x", dom, bus, dev, fn);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	} while (access(path, F_OK) == 0);
	assert_int_equal(run_probe("ollama", 1), 0);
	pick_free_address();
	write_identity(busid);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whitelisted_names_see_identity),
		cmocka_unit_test(test_other_names_see_nothing),
		cmocka_unit_test(test_without_preload_nothing),
		cmocka_unit_test(test_config_adds_names),
		cmocka_unit_test(test_missing_identity_not_faked),
		cmocka_unit_test(test_garbled_identity_not_faked),
		cmocka_unit_test(test_colliding_bus_id_moved),
	};

	if (argc != 3) {
		fprintf(stderr, "usage: %s PROBE LIBRARY\n", argv[0]);
		return 2;
	}
	probe = argv[1];
	library = argv[2];
	/* With a real driver the fake files exist for every process: no negative case. */
	if (access("/proc/driver/nvidia", F_OK) == 0 || access("/dev/nvidiactl", F_OK) == 0) {
		printf("SKIP: a real NVIDIA driver is installed here; run this suite on a machine "
		       "without one\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, NULL);
}
