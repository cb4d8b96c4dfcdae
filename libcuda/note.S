/*
 * The "vgpu" ELF note: the worker refuses to load any driver file that
 * carries it, so vgpu can never end up forwarding to itself.
 */
	.section .note.vgpu, "a", @note
	.balign 4
	.long 2f - 1f		/* name size */
	.long 4f - 3f		/* descriptor size */
	.long 1			/* type */
1:	.asciz "vgpu"
2:	.balign 4
3:	.asciz "libcuda"
4:	.balign 4
	.section .note.GNU-stack, "", @progbits
