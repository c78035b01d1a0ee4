// Where the API is. Build time: VITE_GRAPHQL_URL and VITE_WS_URL. Run time: a config.json next to
// index.html ({ "graphqlUrl": "…", "wsUrl": "…" }) overrides them, so one build serves any
// deployment (the end-to-end tests use that).

export interface AppConfig {
  graphqlUrl: string;
  wsUrl: string;
}

export const buildTimeConfig: AppConfig = {
  graphqlUrl: import.meta.env.VITE_GRAPHQL_URL || 'http://127.0.0.1:4000/',
  wsUrl: import.meta.env.VITE_WS_URL || 'ws://127.0.0.1:4005/ws',
};

export async function loadConfig(): Promise<AppConfig> {
  try {
    const res = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: 'no-store' });
    // Without a config.json the dev server answers with index.html: not JSON, ignored.
    if (res.ok && res.headers.get('content-type')?.includes('json')) {
      const runtime = (await res.json()) as Partial<AppConfig>;
      return {
        graphqlUrl: runtime.graphqlUrl || buildTimeConfig.graphqlUrl,
        wsUrl: runtime.wsUrl || buildTimeConfig.wsUrl,
      };
    }
  } catch {
    // no runtime configuration
  }
  return buildTimeConfig;
}
