import { useQuery } from '@apollo/client/react';
import { lazy, Suspense, useSyncExternalStore } from 'react';
import { RequireAuth, useAuth } from './auth/AuthProvider';
import { LiveUpdates } from './components/LiveUpdates';
import { Spinner } from './components/ui';
import type { AppConfig } from './config';
import { MeDocument } from './gql/graphql';
import { socketState } from './live/store';
import { HostBookingsPage } from './pages/HostBookingsPage';
import { HostListingsPage } from './pages/HostListingsPage';
import { HostNewPage } from './pages/HostNewPage';
import { ListingPage } from './pages/ListingPage';
import { NotificationsPage } from './pages/NotificationsPage';
import { SearchPage } from './pages/SearchPage';
import { SignInPage, SignUpPage } from './pages/SignInPage';
import { TripsPage } from './pages/TripsPage';
import { Link, matchPath, useLocation } from './router';

const PlaygroundPage = lazy(() => import('./pages/PlaygroundPage'));

function Header() {
  const { session, signOut } = useAuth();
  const me = useQuery(MeDocument, { skip: !session }).data?.me;
  const socket = useSyncExternalStore(socketState.subscribe, socketState.get);
  return (
    <header className="top">
      <Link to="/" className="brand">
        Draftr
      </Link>
      <nav>
        <Link to="/">Search</Link>
        {session ? (
          <>
            <Link to="/trips">My trips</Link>
            <Link to="/notifications">Notifications</Link>
            <Link to="/host/listings">Host</Link>
          </>
        ) : null}
        <Link to="/playground">Playground</Link>
      </nav>
      <div className="who">
        {session ? (
          <>
            <span className={`live live-${socket}`} title={`live updates: ${socket}`} data-testid="socket" data-state={socket} />
            <span data-testid="me-name">{me?.displayName ?? '…'}</span>
            {me ? (
              <span className="role" data-testid="me-role">
                {me.role}
              </span>
            ) : null}
            <button type="button" className="link" data-testid="sign-out" onClick={() => void signOut()}>
              Sign out
            </button>
          </>
        ) : (
          <>
            <Link to="/signin">Sign in</Link>
            <Link to="/signup">Sign up</Link>
          </>
        )}
      </div>
    </header>
  );
}

function Page({ config }: { config: AppConfig }) {
  const { path } = useLocation();
  const listing = matchPath('/listing/:id', path);
  if (listing) return <ListingPage key={listing.id} id={listing.id} />;
  switch (path) {
    case '/':
      return <SearchPage />;
    case '/signin':
      return <SignInPage />;
    case '/signup':
      return <SignUpPage />;
    case '/trips':
      return (
        <RequireAuth>
          <TripsPage />
        </RequireAuth>
      );
    case '/notifications':
      return (
        <RequireAuth>
          <NotificationsPage />
        </RequireAuth>
      );
    case '/host/new':
      return (
        <RequireAuth>
          <HostNewPage />
        </RequireAuth>
      );
    case '/host/listings':
      return (
        <RequireAuth>
          <HostListingsPage />
        </RequireAuth>
      );
    case '/host/bookings':
      return (
        <RequireAuth>
          <HostBookingsPage />
        </RequireAuth>
      );
    case '/playground':
      return (
        <Suspense fallback={<Spinner label="Loading GraphiQL…" />}>
          <PlaygroundPage config={config} />
        </Suspense>
      );
    default:
      return <p>Nothing here. <Link to="/">Search stays</Link>.</p>;
  }
}

export function App({ config }: { config: AppConfig }) {
  const { session } = useAuth();
  const { path } = useLocation();
  return (
    <>
      <Header />
      <main className={path === '/playground' ? 'wide' : undefined}>
        <Page config={config} />
      </main>
      {/* One subscription per signed-in user; a new user gets a new connection. */}
      {session ? <LiveUpdates key={session.userId} /> : null}
    </>
  );
}
