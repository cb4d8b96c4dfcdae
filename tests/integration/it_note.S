/*
 * The same "vgpu" note libcuda.so.1 carries (owner "vgpu", type 1,
 * descriptor "libcuda"), for the object the tests expect to be refused.
 */
	.section .note.vgpu, "a", @note
	.balign 4
	.long 2f - 1f		/* owner size, NUL included */
	.long 4f - 3f		/* descriptor size */
	.long 1			/* type */
1:	.asciz "vgpu"
2:	.balign 4
3:	.asciz "libcuda"
4:	.balign 4
	.section .note.GNU-stack, "", @progbits
