/* A tiny shared object for the ELF note tests; only its notes matter. */
int it_lib_answer(void);

int it_lib_answer(void)
{
	return 42;
}
