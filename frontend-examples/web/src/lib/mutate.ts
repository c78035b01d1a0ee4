/**
 * Apollo Client 4's mutate function rejects on errors (errorPolicy "none"); forms want one shape
 * for both outcomes.
 */
export async function settle<T>(run: () => Promise<{ data?: T | null; error?: unknown }>): Promise<{ data: T | null; error: unknown }> {
  try {
    const r = await run();
    return { data: r.data ?? null, error: r.error ?? null };
  } catch (error) {
    return { data: null, error };
  }
}
