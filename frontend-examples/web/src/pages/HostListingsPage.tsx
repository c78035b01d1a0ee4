import { useMutation, useQuery } from '@apollo/client/react';
import { useState } from 'react';
import { FormError, Money, Spinner, Status } from '../components/ui';
import { mapErrors } from '../errors/mapErrors';
import { MyListingsDocument, UpdatePropertyStatusDocument, type PropertyCardFragment, type PropertyStatus } from '../gql/graphql';
import { settle } from '../lib/mutate';
import { Link } from '../router';

export function HostListingsPage() {
  const { data, error, loading, fetchMore } = useQuery(MyListingsDocument, { variables: { first: 20 } });
  const conn = data?.me?.properties;
  if (loading && !conn) return <Spinner />;
  return (
    <section>
      <h1>My listings</h1>
      <FormError message={mapErrors(error).form} />
      <p>
        <Link to="/host/new">List a property</Link> · <Link to="/host/bookings">Bookings of my listings</Link>
      </p>
      {conn ? (
        <>
          <p className="total">
            {conn.totalCount} listing{conn.totalCount === 1 ? '' : 's'}
          </p>
          <ul className="rows" data-testid="listings">
            {conn.edges.map(({ node }) => (
              <Listing key={node.id} p={node} />
            ))}
          </ul>
          {conn.pageInfo.hasNextPage ? (
            <button type="button" className="secondary" onClick={() => fetchMore({ variables: { after: conn.pageInfo.endCursor } })}>
              Show more
            </button>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function Listing({ p }: { p: PropertyCardFragment }) {
  const [update, { loading }] = useMutation(UpdatePropertyStatusDocument);
  const [message, setMessage] = useState<string | null>(null);
  const setStatus = async (status: PropertyStatus) => {
    setMessage(null);
    // Returns { id status }: the Property entity changes in place, here and on every page. Search
    // results (published listings only) are dropped from the cache, to be asked again when shown.
    const { error } = await settle(() =>
      update({
        variables: { id: p.id, status },
        update: (cache) => {
          cache.evict({ id: 'ROOT_QUERY', fieldName: 'properties' });
          cache.gc();
        },
      }),
    );
    if (error) setMessage(mapErrors(error).form);
  };
  return (
    <li className="row" data-testid="listing" data-property-id={p.id}>
      <div>
        <Link to={`/listing/${p.id}`}>
          <strong>{p.title}</strong>
        </Link>{' '}
        <span className="muted">
          · {p.address.city} · <Money value={p.nightlyRate} /> / night
        </span>
      </div>
      <div className="row-meta">
        <Status value={p.status} testId="listing-status" />
      </div>
      <div className="row-actions">
        {p.status !== 'PUBLISHED' ? (
          <button type="button" disabled={loading} data-testid="publish" onClick={() => setStatus('PUBLISHED')}>
            Publish
          </button>
        ) : null}
        {p.status !== 'ARCHIVED' ? (
          <button type="button" className="secondary" disabled={loading} data-testid="archive" onClick={() => setStatus('ARCHIVED')}>
            Archive
          </button>
        ) : null}
      </div>
      <FormError message={message} />
    </li>
  );
}
