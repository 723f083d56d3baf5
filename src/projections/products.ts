import { type EntitySpec, real, text } from './entity.ts';

/**
 * `procureiq_products`: one row per product listing. `product.rejected` names only the merchant
 * product, which `product.approved` links to its listing; a rejection is kept in
 * `procureiq_product_rejections` (by merchant product) and applied to the listing that merchant
 * product is linked to, whichever of the two events arrives first.
 */
export const products: EntitySpec = {
  name: 'products',
  table: 'procureiq_products',
  key: { field: 'productListingId', column: 'product_listing_id' },
  statuses: ['listed', 'approved', 'rejected'],
  stages: [
    {
      type: 'product.listed',
      name: 'listed',
      rank: 1,
      status: 'listed',
      timeColumn: 'listed_at',
      columns: { category: text('category'), displayPrice: real('display_price') },
    },
    {
      type: 'product.approved',
      name: 'approved',
      rank: 2,
      status: 'approved',
      timeColumn: 'approved_at',
      columns: { merchantProductId: text('merchant_product_id') },
    },
    {
      type: 'product.rejected',
      name: 'rejected',
      rank: 3,
      status: 'rejected',
      timeColumn: 'rejected_at',
      columns: { reason: text('reason') },
    },
  ],
};

/** Where rejections wait for (and stay beside) the link from merchant product to listing. */
export const PRODUCT_REJECTIONS = {
  table: 'procureiq_product_rejections',
  key: { field: 'merchantProductId', column: 'merchant_product_id' },
  /** The stage kept there, and the listing column that links to it. */
  stage: 'product.rejected',
  linkColumn: 'merchant_product_id',
  linkingStage: 'product.approved',
} as const;
