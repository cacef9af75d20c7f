/* Shared library of the symbolizer target: one hot function (built with -shared -fPIC). */
__attribute__((noinline)) unsigned long lib_hot_gamma(unsigned long n)
{
	volatile unsigned long acc = 0;
	for (unsigned long i = 0; i < n; i++)
		acc += i ^ (acc >> 3);
	return acc;
}
