import { ApolloProvider } from '@apollo/client/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createDraftrClient } from './apollo/client';
import { App } from './App';
import { AuthProvider, signInPath } from './auth/AuthProvider';
import { loadConfig } from './config';
import { navigate } from './router';
import './styles.css';

const config = await loadConfig();

// A refused refresh (revoked or expired session) or a sign-out in another tab: back to sign in,
// and back here after.
const { client, tokens, store } = createDraftrClient(config, (reason) => {
  const here = window.location.pathname + window.location.search;
  if (window.location.pathname !== '/signin') {
    navigate(signInPath(here, reason === 'refresh-refused' ? 'expired' : 'elsewhere'), { replace: true });
  }
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ApolloProvider client={client}>
      <AuthProvider store={store} tokens={tokens}>
        <App config={config} />
      </AuthProvider>
    </ApolloProvider>
  </StrictMode>,
);
